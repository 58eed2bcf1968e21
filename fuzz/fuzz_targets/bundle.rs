#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    custody_node::fuzz_checks::bundle(data);
});
