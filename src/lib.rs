pub use idprop_harness as harness;
pub use idprop_mocks as mocks;
