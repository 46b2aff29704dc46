//! The client protocol the nodes serve: defined once, in the `clusterkv-protocol` crate,
//! which the harness's client uses too.

pub use clusterkv_protocol::{
    failure_for, read_answer, ClientRequest, Mutation, Rejected, Response, Status,
};
