//! One module per subcommand: validate arguments, call the library, print.

pub mod analyze;
pub mod bench;
pub mod bench_model;
pub mod embed;
pub mod eval;
pub mod export;
pub mod generate;
pub mod inspect;
pub mod load;
pub mod method;
pub mod pack;
pub mod perplexity;
pub mod plan;
pub mod profile;
pub mod report;
pub mod run;
