pub use idprop_mocks as mocks;
