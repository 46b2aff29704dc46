//! `clusterkv`: one node of a test cluster. Parses the command line, then runs the node.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let config = splitbrain_clusters::config::Config::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("clusterkv: cannot start the runtime: {e}");
            return ExitCode::from(70);
        }
    };
    match runtime.block_on(splitbrain_clusters::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clusterkv: {e}");
            ExitCode::from(69)
        }
    }
}
