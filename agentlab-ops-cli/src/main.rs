//! The `agentlab-ops` command.

fn main() {
    // `agentlab-ops list | head`: a closed pipe ends the command quietly, as it ends `grep`
    // (Rust ignores SIGPIPE, so printing to a closed stdout panics instead).
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or_default();
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
    std::process::exit(agentlab_ops_cli::main_with_args(std::env::args_os()));
}
