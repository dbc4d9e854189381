//! The `hush-relay` binary: the entry point of the blind relay server.
//!
//! The server is not implemented yet (it arrives with the relay issue); for now this binary
//! reports that and exits with status 2 so that nothing mistakes it for a running relay.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("hush-relay {}: the relay server is not implemented yet; nothing is served.", env!("CARGO_PKG_VERSION"));
    ExitCode::from(2)
}
