//! The catalog's migrations are embedded by `sqlx::migrate!`; rebuild
//! when one is added or edited (cargo does not track that folder itself).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
