//! x86-64 kernel tiers. Each function here requires CPU features that the
//! dispatch table checks at run time before handing out a pointer to it.

pub mod avx2;
pub mod avx512;
