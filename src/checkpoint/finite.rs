//! The finiteness check of weights: a checkpoint never holds a NaN or ±inf (the save is
//! refused, naming the tensors), and loading refuses such weights too.

use anyhow::{bail, Result};
use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;

/// Finds float parameters with a NaN or ±inf, by their tensor name in the checkpoint (Hugging
/// Face's: an enum's variant, such as `Lm`'s `Gpt2`, is not part of it).
struct NonFinite {
    path: Vec<String>,
    bad: Vec<String>,
    failed: Option<String>,
}

impl NonFinite {
    fn name(&self) -> String {
        let parts: Vec<&str> = self
            .path
            .iter()
            .map(String::as_str)
            .filter(|p| !p.is_empty())
            .collect();
        parts.join(".")
    }
}

impl ModuleVisitor for NonFinite {
    fn enter_module(&mut self, name: &str, container: &str) {
        let variant = container.starts_with("Enum:");
        self.path.push(if variant {
            String::new()
        } else {
            name.to_string()
        });
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        match p.val().is_finite().all().try_into_scalar::<bool>() {
            Ok(true) => {}
            Ok(false) => self.bad.push(self.name()),
            Err(e) => self.failed = Some(format!("{}: {e:?}", self.name())),
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
