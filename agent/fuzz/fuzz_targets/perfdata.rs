//! Fuzzes the plugin output and performance data parser with whatever a
//! plugin could print: it must never panic, and every datum it reads must
//! survive being written back and read again.

#![no_main]

use forewarn_agent::checks::plugin::perfdata::{parse_output, parse_perfdata};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    // The agent reads plugin output the same way.
    let text = String::from_utf8_lossy(bytes);
    let output = parse_output(&text);
    for datum in &output.perfdata.data {
        let written = datum.to_string();
        let again = parse_perfdata(&written);
        assert!(again.errors.is_empty(), "{written:?}: {:?}", again.errors);
        assert_eq!(again.data.as_slice(), std::slice::from_ref(datum), "{written:?}");
    }
    let _ = parse_perfdata(&text);
});
