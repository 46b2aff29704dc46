//! An in-process linearizable store: every operation takes effect atomically under one lock.
//!
//! No processes, no namespaces, no privileges. It measures the harness itself (the runner's
//! rate with nothing behind it) and lets a campaign be tried out anywhere.

use super::{BoxFuture, Client, Function, Outcome, Request};
use splitbrain_checkers::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Store {
    registers: HashMap<Value, Value>,
    sets: HashMap<Value, Vec<Value>>,
}

/// The shared store; [`InMemory::client`] hands out clients of it.
#[derive(Clone, Default)]
pub struct InMemory {
    store: Arc<Mutex<Store>>,
}

impl InMemory {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn client(&self) -> Box<dyn Client> {
        Box::new(InMemoryClient {
            store: self.store.clone(),
        })
    }
}

struct InMemoryClient {
    store: Arc<Mutex<Store>>,
}

impl InMemoryClient {
    fn apply(&self, request: &Request) -> Outcome {
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        match request.f {
            Function::Read => Outcome::Ok(
                store
                    .registers
                    .get(&request.key)
                    .cloned()
                    .unwrap_or_default(),
            ),
            Function::Write => {
                store
                    .registers
                    .insert(request.key.clone(), request.value.clone());
                Outcome::Ok(request.value.clone())
            }
            Function::Cas => {
                let Some([expected, new]) = request
                    .value
                    .as_list()
                    .and_then(|l| <&[Value; 2]>::try_from(l).ok())
                else {
                    return Outcome::Fail("cas needs [expected new]".into());
                };
                let current = store.registers.entry(request.key.clone()).or_default();
                if current == expected {
                    *current = new.clone();
                    Outcome::Ok(request.value.clone())
                } else {
                    Outcome::Fail("compare-failed".into())
                }
            }
            Function::Add => {
                store
                    .sets
                    .entry(request.key.clone())
                    .or_default()
                    .push(request.value.clone());
                Outcome::Ok(request.value.clone())
            }
            Function::Txn => Outcome::Fail("the in-memory system runs no transactions".into()),
            Function::ReadSet => Outcome::Ok(Value::List(
                store.sets.get(&request.key).cloned().unwrap_or_default(),
            )),
        }
    }
}

impl Client for InMemoryClient {
    fn invoke<'a>(&'a mut self, request: &'a Request) -> BoxFuture<'a, Outcome> {
        let outcome = self.apply(request);
        Box::pin(std::future::ready(outcome))
    }
}
