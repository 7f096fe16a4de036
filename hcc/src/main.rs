use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let inv = match hcc::args::parse(args) {
        Ok(inv) => inv,
        Err(e) => {
            eprintln!("hcc: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match hcc::driver::run(&inv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(hcc::driver::Failure(msg)) => {
            if !msg.is_empty() {
                eprintln!("hcc: error: {msg}");
            }
            ExitCode::FAILURE
        }
    }
}
