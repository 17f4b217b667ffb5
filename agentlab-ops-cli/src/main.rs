//! The `agentlab-ops` command.

fn main() {
    std::process::exit(agentlab_ops_cli::main_with_args(std::env::args_os()));
}
