//! A sensitivity table parsed and validated, and summarised.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qloader_analyze::SensitivityTable;

fuzz_target!(|data: &[u8]| {
    if let Ok(table) = SensitivityTable::from_json(data) {
        let _ = table.best_measure();
        let _ = serde_json::to_vec(&table);
    }
});
