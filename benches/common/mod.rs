//! What the benchmark binaries share: reading their `--name value` and `--flag` arguments, and
//! (`process`) measuring processes from outside.

#[allow(dead_code)] // each bench uses what it needs
pub mod process;

/// The command line after the binary's name, without the `--bench` cargo adds.
pub struct Args(Vec<String>);

impl Args {
    pub fn read() -> Args {
        Args(
            std::env::args()
                .skip(1)
                .filter(|a| a != "--bench")
                .collect(),
        )
    }

    /// The word after `name`, if given.
    pub fn value(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .position(|a| a == name)
            .and_then(|i| self.0.get(i + 1))
            .cloned()
    }

    /// Whether the flag `name` is given.
    #[allow(dead_code)] // not every bench has flags
    pub fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }
}
