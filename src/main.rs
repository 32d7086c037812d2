fn main() -> std::process::ExitCode {
    cog::cli::main()
}
