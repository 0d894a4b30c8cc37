//! Fuzzes the agent's config parser and validator with any text an operator
//! (or a broken deployment tool) could write to `agent.toml`: parsing,
//! validation and what the agent derives from a valid config at start-up
//! must never panic.

#![no_main]

use std::path::Path;

use forewarn_agent::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(config) = Config::parse(text, Path::new("/etc/forewarn/agent.toml")) else {
        return;
    };
    if !config.validate().is_empty() {
        return;
    }
    let disk = &config.checks.disk;
    let _ = disk.base_thresholds();
    let _ = disk.thresholds_for("/");
    let _ = disk.trend();
    let _ = disk.poll_interval();
    let _ = config.checks.cpu.window().samples();
    let _ = config.checks.memory.window().samples();
    let _ = config.checks.memory.swap_window().map(|w| w.samples());
    let _ = config.spool.options(&config.state_dir);
});
