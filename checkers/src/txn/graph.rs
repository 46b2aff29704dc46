//! The dependency graph between transactions: integer nodes, relation bitmasks on edges,
//! compressed adjacency, Tarjan's strongly connected components, and a breadth-first search
//! for cycles of a given shape inside one component.

use super::transactions::TxnId;
use serde::Serialize;

/// A set of relations as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rels(pub u8);

impl Rels {
    /// Write-write: the target overwrote (or appended after) the source's write.
    pub const WW: Rels = Rels(1);
    /// Write-read: the target read the source's write.
    pub const WR: Rels = Rels(2);
    /// Read-write (anti-dependency): the target overwrote the version the source read.
    pub const RW: Rels = Rels(4);
    /// Process order: the same process ran the source, then the target.
    pub const PROCESS: Rels = Rels(8);
    /// Real-time order: the source completed before the target was invoked.
    pub const REALTIME: Rels = Rels(16);
    pub const NONE: Rels = Rels(0);

    pub fn union(self, other: Rels) -> Rels {
        Rels(self.0 | other.0)
    }
    pub fn intersects(self, other: Rels) -> bool {
        self.0 & other.0 != 0
    }
    pub fn contains(self, other: Rels) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Names of the relations in the set, Elle's spelling.
    pub fn names(self) -> Vec<Rel> {
        Rel::ALL
            .into_iter()
            .filter(|r| self.intersects(r.bit()))
            .collect()
    }
}

/// One relation, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rel {
    Ww,
    Wr,
    Rw,
    Process,
    Realtime,
}

impl Rel {
    pub const ALL: [Rel; 5] = [Rel::Ww, Rel::Wr, Rel::Rw, Rel::Process, Rel::Realtime];
    pub fn bit(self) -> Rels {
        match self {
            Rel::Ww => Rels::WW,
            Rel::Wr => Rels::WR,
            Rel::Rw => Rels::RW,
            Rel::Process => Rels::PROCESS,
            Rel::Realtime => Rels::REALTIME,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Rel::Ww => "ww",
            Rel::Wr => "wr",
            Rel::Rw => "rw",
            Rel::Process => "process",
            Rel::Realtime => "realtime",
        }
    }
}

/// Edges as inferred, before the graph is built: `(from, to, relations)`.
#[derive(Debug, Default)]
pub struct EdgeBuffer {
    pub edges: Vec<(TxnId, TxnId, Rels)>,
}

impl EdgeBuffer {
    pub fn add(&mut self, from: TxnId, to: TxnId, rels: Rels) {
        if from != to {
            self.edges.push((from, to, rels));
        }
    }
    pub fn len(&self) -> usize {
        self.edges.len()
    }
    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
    }
}

/// Compressed adjacency: the out-edges of node `n` are `targets[offsets[n]..offsets[n+1]]`,
/// sorted by target, one entry per target with every relation merged into its mask.
#[derive(Debug, Default)]
pub struct Graph {
    offsets: Vec<u32>,
    targets: Vec<TxnId>,
    rels: Vec<Rels>,
}

impl Graph {
    /// Builds the graph of `nodes` nodes (a counting sort by source, then a sort of each
    /// node's few targets).
    pub fn build(nodes: usize, buffer: EdgeBuffer) -> Graph {
        let mut offsets = vec![0u32; nodes + 1];
        for &(from, _, _) in &buffer.edges {
            offsets[from as usize + 1] += 1;
        }
        for i in 0..nodes {
            offsets[i + 1] += offsets[i];
        }
        let mut cursor: Vec<u32> = offsets[..nodes].to_vec();
        let mut slots = vec![(0 as TxnId, Rels::NONE); buffer.edges.len()];
        for (from, to, rels) in buffer.edges {
            let c = &mut cursor[from as usize];
            slots[*c as usize] = (to, rels);
            *c += 1;
        }
        drop(cursor);
        let mut targets = Vec::with_capacity(slots.len());
        let mut rels = Vec::with_capacity(slots.len());
        let mut new_offsets = vec![0u32; nodes + 1];
        for n in 0..nodes {
            let slice = &mut slots[offsets[n] as usize..offsets[n + 1] as usize];
            slice.sort_unstable_by_key(|&(to, _)| to);
            for &(to, r) in slice.iter() {
                if targets.len() > new_offsets[n] as usize && *targets.last().unwrap() == to {
                    let last = rels.len() - 1;
                    rels[last] = Rels::union(rels[last], r);
                } else {
                    targets.push(to);
                    rels.push(r);
                }
            }
            new_offsets[n + 1] = targets.len() as u32;
        }
        Graph {
            offsets: new_offsets,
            targets,
            rels,
        }
    }

    pub fn nodes(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
    pub fn edge_count(&self) -> usize {
        self.targets.len()
    }
    pub fn out(&self, n: TxnId) -> impl Iterator<Item = (TxnId, Rels)> + '_ {
        let (a, b) = (
            self.offsets[n as usize] as usize,
            self.offsets[n as usize + 1] as usize,
        );
        self.targets[a..b]
            .iter()
            .copied()
            .zip(self.rels[a..b].iter().copied())
    }
    /// The relations of the edge `from → to`, if any.
    pub fn rels(&self, from: TxnId, to: TxnId) -> Rels {
        let (a, b) = (
            self.offsets[from as usize] as usize,
            self.offsets[from as usize + 1] as usize,
        );
        match self.targets[a..b].binary_search(&to) {
            Ok(i) => self.rels[a + i],
            Err(_) => Rels::NONE,
        }
    }

    /// Strongly connected components with more than one node (a node has no edge to
    /// itself), by an iterative Tarjan.
    pub fn nontrivial_sccs(&self) -> Vec<Vec<TxnId>> {
        const UNSEEN: u32 = u32::MAX;
        let n = self.nodes();
        let mut index = vec![UNSEEN; n];
        let mut low = vec![0u32; n];
        let mut on_stack = vec![false; n];
        let mut stack: Vec<TxnId> = Vec::new();
        let mut call: Vec<(TxnId, u32)> = Vec::new();
        let mut next = 0u32;
        let mut out = Vec::new();
        for root in 0..n as TxnId {
            if index[root as usize] != UNSEEN {
                continue;
            }
            call.push((root, self.offsets[root as usize]));
            index[root as usize] = next;
            low[root as usize] = next;
            next += 1;
            stack.push(root);
            on_stack[root as usize] = true;
            while let Some(&mut (v, ref mut edge)) = call.last_mut() {
                let end = self.offsets[v as usize + 1];
                if *edge < end {
                    let w = self.targets[*edge as usize];
                    *edge += 1;
                    if index[w as usize] == UNSEEN {
                        index[w as usize] = next;
                        low[w as usize] = next;
                        next += 1;
                        stack.push(w);
                        on_stack[w as usize] = true;
                        call.push((w, self.offsets[w as usize]));
                    } else if on_stack[w as usize] {
                        low[v as usize] = low[v as usize].min(index[w as usize]);
                    }
                } else {
                    call.pop();
                    if let Some(&(parent, _)) = call.last() {
                        low[parent as usize] = low[parent as usize].min(low[v as usize]);
                    }
                    if low[v as usize] == index[v as usize] {
                        let mut component = Vec::new();
                        loop {
                            let w = stack.pop().expect("Tarjan stack holds the component");
                            on_stack[w as usize] = false;
                            component.push(w);
                            if w == v {
                                break;
                            }
                        }
                        if component.len() > 1 {
                            component.sort_unstable();
                            out.push(component);
                        }
                    }
                }
            }
        }
        out
    }
}

/// The shape of a cycle to look for (Elle's cycle anomaly specifications).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CycleSpec {
    /// Relations any edge may be taken as, besides rw.
    pub plain: Rels,
    /// How rw edges may appear.
    pub rw: RwRule,
    /// Relations of which at least one edge must be taken (e.g. wr for G1c, process for
    /// a `-process` variant).
    pub required: Rels,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RwRule {
    /// No rw edge.
    None,
    /// Exactly one rw edge.
    Single,
    /// At least two rw edges, no two adjacent (also across the cycle's end).
    Nonadjacent,
    /// At least two rw edges.
    Multiple,
}

/// A cycle: nodes in order, the relations of each edge `nodes[i] → nodes[i+1 mod n]`, and
/// the relations the search took each edge as (rw alone, or its plain relations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    pub nodes: Vec<TxnId>,
    pub rels: Vec<Rels>,
    pub taken: Vec<Rels>,
}

/// Search state flags per node: rw count (0, 1, 2+) in bits 0–1, last edge rw in bit 2,
/// first edge rw in bit 3, required seen in bits 4..
const STATES: usize = 64;

/// Finds a cycle of the given shape inside `component` (a strongly connected component), or
/// `None`. `budget` counts state visits; when it runs out the search stops and says so.
pub fn find_cycle(
    graph: &Graph,
    component: &[TxnId],
    local: &mut LocalIndex,
    spec: CycleSpec,
    budget: &mut u64,
) -> Result<Option<Cycle>, BudgetExhausted> {
    local.assign(component);
    let k = component.len();
    let required_bits: Vec<Rels> = Rel::ALL
        .into_iter()
        .map(Rel::bit)
        .filter(|r| spec.required.intersects(*r))
        .collect();
    let all_required = (1u8 << required_bits.len()) - 1;
    let mut parent: Vec<u32> = vec![u32::MAX; k * STATES];
    let mut queue: Vec<u32> = Vec::new();
    let mut touched: Vec<u32> = Vec::new();
    for (start_local, &start) in component.iter().enumerate() {
        for &i in &touched {
            parent[i as usize] = u32::MAX;
        }
        touched.clear();
        queue.clear();
        let start_state = (start_local * STATES) as u32;
        parent[start_state as usize] = start_state;
        touched.push(start_state);
        queue.push(start_state);
        let mut head = 0;
        let mut found: Option<(u32, bool)> = None;
        'bfs: while head < queue.len() {
            let s = queue[head];
            head += 1;
            if *budget == 0 {
                return Err(BudgetExhausted);
            }
            *budget -= 1;
            let node = component[s as usize / STATES];
            let flags = (s as usize % STATES) as u8;
            let rw_count = flags & 3;
            let last_rw = flags & 4 != 0;
            let first_rw = flags & 8 != 0;
            let is_start = s == start_state;
            for (to, rels) in graph.out(node) {
                let Some(to_local) = local.get(to) else {
                    continue;
                };
                // Two ways to take an edge: as a plain edge or as rw.
                for as_rw in [false, true] {
                    let usable = if as_rw {
                        rels.intersects(Rels::RW) && spec.rw != RwRule::None
                    } else {
                        rels.intersects(spec.plain)
                    };
                    if !usable {
                        continue;
                    }
                    if as_rw && spec.rw == RwRule::Nonadjacent && last_rw {
                        continue;
                    }
                    let taken = if as_rw {
                        Rels::RW
                    } else {
                        Rels(rels.0 & spec.plain.0)
                    };
                    let mut req = flags >> 4;
                    for (i, bit) in required_bits.iter().enumerate() {
                        if taken.intersects(*bit) {
                            req |= 1 << i;
                        }
                    }
                    let new_count = if as_rw {
                        (rw_count + 1).min(2)
                    } else {
                        rw_count
                    };
                    if spec.rw == RwRule::Single && new_count > 1 {
                        continue;
                    }
                    let new_first = if is_start { as_rw } else { first_rw };
                    let new_flags = new_count
                        | if as_rw { 4 } else { 0 }
                        | if new_first { 8 } else { 0 }
                        | (req << 4);
                    if to == start {
                        let count_ok = match spec.rw {
                            RwRule::None => new_count == 0,
                            RwRule::Single => new_count == 1,
                            RwRule::Nonadjacent => new_count == 2 && !(as_rw && new_first),
                            RwRule::Multiple => new_count == 2,
                        };
                        if count_ok && req == all_required {
                            found = Some((s, as_rw));
                            break 'bfs;
                        }
                        continue;
                    }
                    let t = (to_local * STATES + new_flags as usize) as u32;
                    if parent[t as usize] == u32::MAX {
                        parent[t as usize] = s;
                        touched.push(t);
                        queue.push(t);
                    }
                }
            }
        }
        if let Some((last, closing_rw)) = found {
            // The walk's edges, each with the relations it was taken as.
            let taken_into = |state: u32, from: TxnId, to: TxnId| {
                if (state as usize % STATES) & 4 != 0 {
                    Rels::RW
                } else {
                    Rels(graph.rels(from, to).0 & spec.plain.0)
                }
            };
            let mut rev: Vec<(TxnId, Rels)> = Vec::new();
            let close = if closing_rw {
                Rels::RW
            } else {
                Rels(graph.rels(component[last as usize / STATES], start).0 & spec.plain.0)
            };
            let mut s = last;
            let mut leaving = close;
            while s != start_state {
                let node = component[s as usize / STATES];
                rev.push((node, leaving));
                let p = parent[s as usize];
                leaving = taken_into(s, component[p as usize / STATES], node);
                s = p;
            }
            let mut walk = vec![(start, leaving)];
            walk.extend(rev.into_iter().rev());
            let simple = simple_cycle(&walk);
            let nodes: Vec<TxnId> = simple.iter().map(|&(n, _)| n).collect();
            let taken = simple.iter().map(|&(_, r)| r).collect();
            let rels = (0..nodes.len())
                .map(|i| graph.rels(nodes[i], nodes[(i + 1) % nodes.len()]))
                .collect();
            return Ok(Some(Cycle { nodes, rels, taken }));
        }
    }
    Ok(None)
}

/// Cuts repeated nodes out of a closed walk starting at `walk[0]`; each entry is a node and
/// the edge leaving it, so every edge kept is an edge of the walk.
fn simple_cycle(walk: &[(TxnId, Rels)]) -> Vec<(TxnId, Rels)> {
    let mut out: Vec<(TxnId, Rels)> = Vec::with_capacity(walk.len());
    for &(n, r) in walk {
        if let Some(p) = out.iter().position(|&(m, _)| m == n) {
            out.truncate(p);
        }
        out.push((n, r));
    }
    out
}

/// The search ran out of its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetExhausted;

/// Maps the nodes of one component to `0..k`, reusable across components.
#[derive(Debug)]
pub struct LocalIndex {
    slot: Vec<u32>,
    assigned: Vec<TxnId>,
}

impl LocalIndex {
    pub fn new(nodes: usize) -> Self {
        LocalIndex {
            slot: vec![u32::MAX; nodes],
            assigned: Vec::new(),
        }
    }
    fn assign(&mut self, component: &[TxnId]) {
        for &n in &self.assigned {
            self.slot[n as usize] = u32::MAX;
        }
        self.assigned.clear();
        for (i, &n) in component.iter().enumerate() {
            self.slot[n as usize] = i as u32;
            self.assigned.push(n);
        }
    }
    fn get(&self, n: TxnId) -> Option<usize> {
        match self.slot[n as usize] {
            u32::MAX => None,
            i => Some(i as usize),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(n: usize, edges: &[(u32, u32, Rels)]) -> Graph {
        let mut b = EdgeBuffer::default();
        for &(f, t, r) in edges {
            b.add(f, t, r);
        }
        Graph::build(n, b)
    }

    #[test]
    fn sccs_find_only_cycles() {
        let g = graph(
            5,
            &[
                (0, 1, Rels::WW),
                (1, 2, Rels::WW),
                (2, 0, Rels::WR),
                (3, 4, Rels::WW),
            ],
        );
        assert_eq!(g.nontrivial_sccs(), vec![vec![0, 1, 2]]);
    }

    #[test]
    fn parallel_edges_merge() {
        let g = graph(2, &[(0, 1, Rels::WW), (0, 1, Rels::RW)]);
        assert_eq!(g.edge_count(), 1);
        assert_eq!(g.rels(0, 1), Rels::WW.union(Rels::RW));
        assert_eq!(g.rels(1, 0), Rels::NONE);
    }

    #[test]
    fn single_rule_rejects_two_rw() {
        let g = graph(2, &[(0, 1, Rels::RW), (1, 0, Rels::RW)]);
        let comp = &g.nontrivial_sccs()[0];
        let mut local = LocalIndex::new(2);
        let mut budget = 1000;
        let single = CycleSpec {
            plain: Rels::WW.union(Rels::WR),
            rw: RwRule::Single,
            required: Rels::NONE,
        };
        assert_eq!(
            find_cycle(&g, comp, &mut local, single, &mut budget).unwrap(),
            None
        );
        let adjacent = CycleSpec {
            rw: RwRule::Nonadjacent,
            ..single
        };
        assert_eq!(
            find_cycle(&g, comp, &mut local, adjacent, &mut budget).unwrap(),
            None
        );
        let multiple = CycleSpec {
            rw: RwRule::Multiple,
            ..single
        };
        assert!(find_cycle(&g, comp, &mut local, multiple, &mut budget)
            .unwrap()
            .is_some());
    }

    #[test]
    fn budget_runs_out() {
        let g = graph(2, &[(0, 1, Rels::WW), (1, 0, Rels::WW)]);
        let comp = &g.nontrivial_sccs()[0];
        let mut local = LocalIndex::new(2);
        let mut budget = 0;
        let spec = CycleSpec {
            plain: Rels::WW,
            rw: RwRule::None,
            required: Rels::NONE,
        };
        assert_eq!(
            find_cycle(&g, comp, &mut local, spec, &mut budget),
            Err(BudgetExhausted)
        );
    }
}
