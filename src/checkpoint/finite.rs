//! The finiteness check of weights: a checkpoint never holds a NaN or ±inf (the save is
//! refused, naming the tensors), and loading refuses such weights too.

use anyhow::{bail, Result};
use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;

/// Finds float parameters with a NaN or ±inf, by their GPT-2 tensor name.
struct NonFinite {
    path: Vec<String>,
    bad: Vec<String>,
    failed: Option<String>,
}

impl ModuleVisitor for NonFinite {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        match p.val().is_finite().all().try_into_scalar::<bool>() {
            Ok(true) => {}
            Ok(false) => self.bad.push(self.path.join(".")),
            Err(e) => self.failed = Some(format!("{}: {e:?}", self.path.join("."))),
        }
    }
}

/// Errs, naming the tensors, when any float parameter of `model` holds a NaN or ±inf.
pub fn check_finite<M: Module>(model: &M) -> Result<()> {
    let mut v = NonFinite {
        path: Vec::new(),
        bad: Vec::new(),
        failed: None,
    };
    model.visit(&mut v);
    if let Some(e) = v.failed {
        bail!("reading weights from the device: {e}");
    }
    if !v.bad.is_empty() {
        bail!(
            "non-finite weights: {} tensor(s) hold NaN or infinite values ({})",
            v.bad.len(),
            v.bad.join(", ")
        );
    }
    Ok(())
}
