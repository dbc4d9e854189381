//! The uniffi bindings generator for hush-ffi, run in library mode by `scripts/bindings.sh`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
