//! The `safex` binary: parse, run, map the outcome to an exit code.

fn main() {
    let code = safex::main_with_args(std::env::args_os().collect());
    std::process::exit(code);
}
