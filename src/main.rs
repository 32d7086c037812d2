fn main() -> std::process::ExitCode {
    // The sandbox process for build commands is `cog` started again; it must take over before
    // anything starts a thread (see cog::sandbox::helper_main).
    if let Some(code) = cog::sandbox::helper_main() {
        return code;
    }
    cog::cli::main()
}
