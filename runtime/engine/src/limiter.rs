//! The store's resource limiter: growing a linear memory past `--memory-limit` fails the call
//! with a typed [`MemoryLimitExceeded`], which the trap classifier downcasts (no parsing of
//! wasmtime's message text).

use wasmtime::ResourceLimiter;

/// A guest asked to grow a linear memory past the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the guest tried to grow its memory to {requested} bytes, past the {} MiB limit (--memory-limit)",
    limit >> 20
)]
pub struct MemoryLimitExceeded {
    /// The size the guest asked for, in bytes.
    pub requested: usize,
    /// The limit, in bytes.
    pub limit: usize,
}

/// Caps every linear memory of a store at `memory_limit` bytes.
pub(crate) struct MemoryLimiter {
    pub(crate) memory_limit: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            // An error, not `Ok(false)`: a refused `memory.grow` returns -1 to the guest, which
            // most runtimes turn into an abort that hides the cause; the error ends the call
            // with the size asked for.
            return Err(MemoryLimitExceeded {
                requested: desired,
                limit: self.memory_limit,
            }
            .into());
        }
        // Past the memory's own declared maximum, growth fails as wasm specifies.
        Ok(maximum.is_none_or(|max| desired <= max))
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        // The host could not provide memory within the limit (mmap failed): fail the call
        // with the host's reason rather than letting the guest see a failed allocation.
        Err(error.context("the host could not grow the guest's memory"))
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(maximum.is_none_or(|max| desired <= max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_past_the_limit_is_a_typed_error() {
        let mut limiter = MemoryLimiter {
            memory_limit: 1 << 20,
        };
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap());
        assert!(!limiter.memory_growing(0, 1 << 19, Some(1 << 18)).unwrap());
        let err = limiter.memory_growing(0, 2 << 20, None).unwrap_err();
        assert_eq!(
            err.downcast_ref::<MemoryLimitExceeded>(),
            Some(&MemoryLimitExceeded {
                requested: 2 << 20,
                limit: 1 << 20
            })
        );
        assert_eq!(
            err.to_string(),
            "the guest tried to grow its memory to 2097152 bytes, past the 1 MiB limit (--memory-limit)"
        );
    }
}
