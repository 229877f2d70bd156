//! Decoding `POST /v1.0/bindings/{name}` bodies never panics, and what it accepts re-encodes to
//! valid JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = bindery_http::decode_output_request(data) {
        // The data handed to bindings is always well-formed JSON text.
        let reparsed: Result<serde_json_check::Value, _> = serde_json_check::from_slice(&req.data);
        assert!(reparsed.is_ok(), "re-encoded data is not JSON: {:?}", req.data);
    }
});
