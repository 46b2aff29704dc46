//! Partition shapes as plain data: who must not hear whom.
//!
//! A [`Grudge`] maps each node to the set of nodes whose packets it must not receive
//! (Jepsen's convention). Every shape here is a pure function of the node list and a random
//! source, so a schedule can be computed up front from a seed and tested without a kernel.
//! Only [`super::net`] turns a grudge into kernel state.

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The partition shapes a campaign can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// The first half of the nodes (in name order) against the rest.
    Halves,
    /// Two halves of a random shuffle.
    RandomHalves,
    /// One random node against the rest.
    IsolateOne,
    /// Every node sees a majority, but no two nodes see the same majority.
    MajoritiesRing,
    /// Two halves joined only through one node that sees both.
    Bridge,
    /// A random third of the nodes (at least one) against the rest.
    MinorityThird,
    /// The current leader/primary against the rest (resolved when the fault starts).
    IsolateLeader,
}

impl Shape {
    pub const ALL: [Shape; 7] = [
        Shape::Halves,
        Shape::RandomHalves,
        Shape::IsolateOne,
        Shape::MajoritiesRing,
        Shape::Bridge,
        Shape::MinorityThird,
        Shape::IsolateLeader,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shape::Halves => "halves",
            Shape::RandomHalves => "random-halves",
            Shape::IsolateOne => "isolate-one",
            Shape::MajoritiesRing => "majorities-ring",
            Shape::Bridge => "bridge",
            Shape::MinorityThird => "minority-third",
            Shape::IsolateLeader => "isolate-leader",
        }
    }
}

/// Node → the nodes it must not hear from. Nodes without an entry hear everyone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grudge(pub BTreeMap<String, BTreeSet<String>>);

impl Grudge {
    /// Nothing is dropped.
    pub fn none() -> Self {
        Grudge::default()
    }

    /// A symmetric cut between every pair of distinct components.
    pub fn complete(components: &[Vec<String>]) -> Self {
        let mut grudge = Grudge::default();
        for (i, side) in components.iter().enumerate() {
            for (j, other) in components.iter().enumerate() {
                if i == j {
                    continue;
                }
                for receiver in side {
                    for sender in other {
                        grudge.add(receiver, sender);
                    }
                }
            }
        }
        grudge
    }

    /// `receiver` stops hearing `sender`.
    pub fn add(&mut self, receiver: &str, sender: &str) {
        if receiver != sender {
            self.0
                .entry(receiver.to_owned())
                .or_default()
                .insert(sender.to_owned());
        }
    }

    /// Whether packets from `sender` to `receiver` are dropped.
    pub fn blocks(&self, sender: &str, receiver: &str) -> bool {
        self.0.get(receiver).is_some_and(|s| s.contains(sender))
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(BTreeSet::is_empty)
    }

    /// For each sender, the receivers it must not reach (the view of a sender-side backend).
    pub fn by_sender(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (receiver, senders) in &self.0 {
            for sender in senders {
                out.entry(sender.clone())
                    .or_default()
                    .insert(receiver.clone());
            }
        }
        out
    }

    /// One blocked (sender, receiver) pair, if any: used to prove a cut took effect.
    pub fn a_blocked_pair(&self) -> Option<(String, String)> {
        self.0.iter().find_map(|(receiver, senders)| {
            senders
                .iter()
                .next()
                .map(|sender| (sender.clone(), receiver.clone()))
        })
    }

    /// One pair of distinct nodes in both directions unblocked, if any: used to prove a
    /// side still works.
    pub fn an_open_pair(&self, nodes: &[String]) -> Option<(String, String)> {
        nodes.iter().find_map(|a| {
            nodes
                .iter()
                .find(|b| *b != a && !self.blocks(a, b) && !self.blocks(b, a))
                .map(|b| (a.clone(), b.clone()))
        })
    }

    /// The number of (sender, receiver) pairs dropped.
    pub fn len(&self) -> usize {
        self.0.values().map(BTreeSet::len).sum()
    }
}

/// Why a shape cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("partition shape `{shape}` needs at least {needs} nodes, the cluster has {has}")]
    TooFewNodes {
        shape: &'static str,
        needs: usize,
        has: usize,
    },
    #[error("partition shape `isolate-leader` is resolved when the fault starts, not when it is planned")]
    NeedsLeader,
}

impl Shape {
    /// The fewest nodes the shape makes sense for.
    pub fn min_nodes(self) -> usize {
        match self {
            Shape::MajoritiesRing => 4,
            Shape::Bridge => 3,
            _ => 2,
        }
    }
}

/// Splits `nodes` into two halves (the first half is the smaller one on odd counts).
fn split_halves(nodes: &[String]) -> Vec<Vec<String>> {
    let mid = nodes.len() / 2;
    vec![nodes[..mid].to_vec(), nodes[mid..].to_vec()]
}

fn isolate(nodes: &[String], lonely: &str) -> Grudge {
    let rest: Vec<String> = nodes.iter().filter(|n| *n != lonely).cloned().collect();
    Grudge::complete(&[vec![lonely.to_owned()], rest])
}

/// The grudge of `shape` over `nodes`, drawing any randomness from `rng`.
pub fn grudge(shape: Shape, nodes: &[String], rng: &mut impl Rng) -> Result<Grudge, ShapeError> {
    if nodes.len() < shape.min_nodes() {
        return Err(ShapeError::TooFewNodes {
            shape: shape.name(),
            needs: shape.min_nodes(),
            has: nodes.len(),
        });
    }
    let mut shuffled = || {
        let mut v = nodes.to_vec();
        v.shuffle(rng);
        v
    };
    Ok(match shape {
        Shape::Halves => Grudge::complete(&split_halves(nodes)),
        Shape::RandomHalves => Grudge::complete(&split_halves(&shuffled())),
        Shape::IsolateOne => {
            let v = shuffled();
            isolate(nodes, &v[0])
        }
        Shape::MinorityThird => {
            let v = shuffled();
            let size = (nodes.len() / 3).max(1);
            Grudge::complete(&[v[..size].to_vec(), v[size..].to_vec()])
        }
        Shape::Bridge => {
            // Left half | bridge node | right half: the bridge hears both halves, the halves
            // never hear each other.
            let v = shuffled();
            let mid = v.len() / 2;
            let (left, rest) = v.split_at(mid);
            let right = &rest[1..];
            let mut grudge = Grudge::default();
            for a in left {
                for b in right {
                    grudge.add(a, b);
                    grudge.add(b, a);
                }
            }
            grudge
        }
        Shape::MajoritiesRing => {
            // On a random ring, each node hears the nodes within distance `reach`; the
            // window (2·reach + 1 nodes) is the smallest one holding a majority.
            let v = shuffled();
            let n = v.len();
            let majority = n / 2 + 1;
            let reach = majority / 2;
            let mut grudge = Grudge::default();
            for i in 0..n {
                for j in 0..n {
                    let d = (i + n - j) % n;
                    let ring_distance = d.min(n - d);
                    if ring_distance > reach {
                        grudge.add(&v[i], &v[j]);
                    }
                }
            }
            grudge
        }
        Shape::IsolateLeader => return Err(ShapeError::NeedsLeader),
    })
}

/// The leader's grudge: `leader` alone against the rest.
pub fn isolate_node(nodes: &[String], node: &str) -> Grudge {
    isolate(nodes, node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    /// The connected components of the "hears both ways" relation.
    fn heard_by(g: &Grudge, nodes: &[String], node: &str) -> BTreeSet<String> {
        nodes
            .iter()
            .filter(|o| !g.blocks(o, node))
            .cloned()
            .collect()
    }

    fn rng(seed: u64) -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(seed)
    }

    #[test]
    fn halves_cut_the_first_half_from_the_rest() {
        let nodes = names(5);
        let g = grudge(Shape::Halves, &nodes, &mut rng(1)).unwrap();
        assert!(g.blocks("n1", "n3") && g.blocks("n3", "n1"));
        assert!(g.blocks("n2", "n5") && g.blocks("n5", "n2"));
        assert!(!g.blocks("n1", "n2") && !g.blocks("n3", "n5"));
        assert_eq!(g.len(), 2 * 2 * 3);
    }

    #[test]
    fn isolate_one_and_minority_third_leave_a_majority() {
        for seed in 0..20 {
            let nodes = names(5);
            let g = grudge(Shape::IsolateOne, &nodes, &mut rng(seed)).unwrap();
            let isolated: Vec<_> = nodes
                .iter()
                .filter(|n| heard_by(&g, &nodes, n).len() == 1)
                .collect();
            assert_eq!(isolated.len(), 1, "exactly one node hears only itself");
            assert_eq!(g.len(), 2 * 4);

            let nodes = names(7);
            let g = grudge(Shape::MinorityThird, &nodes, &mut rng(seed)).unwrap();
            let sizes: BTreeSet<usize> = nodes
                .iter()
                .map(|n| heard_by(&g, &nodes, n).len())
                .collect();
            assert_eq!(
                sizes,
                BTreeSet::from([2, 5]),
                "a third (2 of 7) against the rest"
            );
        }
    }

    #[test]
    fn majorities_ring_gives_each_node_its_own_majority() {
        for n in [5, 7] {
            let nodes = names(n);
            let g = grudge(Shape::MajoritiesRing, &nodes, &mut rng(3)).unwrap();
            let views: Vec<BTreeSet<String>> =
                nodes.iter().map(|x| heard_by(&g, &nodes, x)).collect();
            for view in &views {
                assert!(view.len() > n / 2, "{view:?} is a majority of {n}");
            }
            let distinct: BTreeSet<_> = views.iter().collect();
            assert_eq!(distinct.len(), n, "no two nodes see the same majority");
            // The relation is symmetric.
            for a in &nodes {
                for b in &nodes {
                    assert_eq!(g.blocks(a, b), g.blocks(b, a));
                }
            }
        }
    }

    #[test]
    fn bridge_node_hears_everyone_and_halves_do_not_meet() {
        let nodes = names(5);
        let g = grudge(Shape::Bridge, &nodes, &mut rng(9)).unwrap();
        let bridges: Vec<_> = nodes
            .iter()
            .filter(|n| heard_by(&g, &nodes, n).len() == 5)
            .collect();
        assert_eq!(bridges.len(), 1, "{g:?}");
        let others: Vec<_> = nodes.iter().filter(|n| !bridges.contains(n)).collect();
        for n in others {
            assert_eq!(heard_by(&g, &nodes, n).len(), 3, "own half (2) + bridge");
        }
    }

    #[test]
    fn random_shapes_depend_only_on_the_seed() {
        let nodes = names(5);
        for shape in [
            Shape::RandomHalves,
            Shape::IsolateOne,
            Shape::Bridge,
            Shape::MajoritiesRing,
        ] {
            let a = grudge(shape, &nodes, &mut rng(42)).unwrap();
            let b = grudge(shape, &nodes, &mut rng(42)).unwrap();
            assert_eq!(a, b);
            let all_same = (0..20).all(|s| grudge(shape, &nodes, &mut rng(s)).unwrap() == a);
            assert!(!all_same, "{shape:?} ignores its random source");
        }
    }

    #[test]
    fn too_small_clusters_and_the_leader_shape_are_refused() {
        assert!(matches!(
            grudge(Shape::MajoritiesRing, &names(3), &mut rng(0)),
            Err(ShapeError::TooFewNodes { needs: 4, .. })
        ));
        assert!(grudge(Shape::Halves, &names(1), &mut rng(0)).is_err());
        assert_eq!(
            grudge(Shape::IsolateLeader, &names(3), &mut rng(0)),
            Err(ShapeError::NeedsLeader)
        );
        let g = isolate_node(&names(3), "n2");
        assert!(g.blocks("n2", "n1") && g.blocks("n3", "n2") && !g.blocks("n1", "n3"));
    }

    #[test]
    fn sender_view_and_probe_pairs() {
        let nodes = names(4);
        let g = grudge(Shape::Halves, &nodes, &mut rng(0)).unwrap();
        let by_sender = g.by_sender();
        assert_eq!(
            by_sender["n1"],
            BTreeSet::from(["n3".to_owned(), "n4".to_owned()])
        );
        let (s, r) = g.a_blocked_pair().unwrap();
        assert!(g.blocks(&s, &r));
        let (a, b) = g.an_open_pair(&nodes).unwrap();
        assert!(!g.blocks(&a, &b) && !g.blocks(&b, &a) && a != b);
        assert!(Grudge::none().is_empty() && Grudge::none().a_blocked_pair().is_none());
    }
}
