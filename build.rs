// The migrations are embedded by `sqlx::migrate!`: a change that only adds or edits one must
// rebuild the crate too (as sqlx's documentation asks).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
