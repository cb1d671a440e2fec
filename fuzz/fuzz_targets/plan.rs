//! A plan file parsed and validated (totals against the tensors), and
//! explained.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qloader_schedule::Plan;

fuzz_target!(|data: &[u8]| {
    if let Ok(plan) = Plan::from_json(data) {
        let _ = qloader_schedule::explain::explain(&plan, 5);
    }
});
