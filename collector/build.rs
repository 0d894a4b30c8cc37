//! Rebuilds the collector when a migration is added: `sqlx::migrate!`
//! tracks the files it embedded, not new ones in the directory.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
