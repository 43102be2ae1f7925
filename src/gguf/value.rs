//! GGUF metadata values: the thirteen value types of the format ([`ValueType`], with the ids the
//! file stores), a value of any of them ([`Value`], arrays nested to any depth), and
//! [`FromValue`], the conversions the typed getters of [`super::GgufFile`] use.

/// The type of a metadata value, with its id in the file (`gguf_type` in ggml's `gguf.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64,
}

impl ValueType {
    const ALL: [ValueType; 13] = [
        ValueType::U8,
        ValueType::I8,
        ValueType::U16,
        ValueType::I16,
        ValueType::U32,
        ValueType::I32,
        ValueType::F32,
        ValueType::Bool,
        ValueType::String,
        ValueType::Array,
        ValueType::U64,
        ValueType::I64,
        ValueType::F64,
    ];

    /// The type with id `id` (0..=12), `None` for any other id.
    pub fn from_id(id: u32) -> Option<Self> {
        Self::ALL.get(usize::try_from(id).ok()?).copied()
    }

    /// Its id in the file.
    pub fn id(self) -> u32 {
        // ALL is in id order
        Self::ALL.iter().position(|t| *t == self).unwrap_or(0) as u32
    }

    /// The fewest bytes one value of this type takes in a file: a string is at least its 8-byte
    /// length, an array its 4-byte element type and 8-byte count. Bounds an array's count by the
    /// bytes left, before anything is allocated for it.
    pub fn min_size(self) -> u64 {
        match self {
            ValueType::U8 | ValueType::I8 | ValueType::Bool => 1,
            ValueType::U16 | ValueType::I16 => 2,
            ValueType::U32 | ValueType::I32 | ValueType::F32 => 4,
            ValueType::U64 | ValueType::I64 | ValueType::F64 | ValueType::String => 8,
            ValueType::Array => 12,
        }
    }
}

impl std::fmt::Display for ValueType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            ValueType::U8 => "u8",
            ValueType::I8 => "i8",
            ValueType::U16 => "u16",
            ValueType::I16 => "i16",
            ValueType::U32 => "u32",
            ValueType::I32 => "i32",
            ValueType::F32 => "f32",
            ValueType::Bool => "bool",
            ValueType::String => "string",
            ValueType::Array => "array",
            ValueType::U64 => "u64",
            ValueType::I64 => "i64",
            ValueType::F64 => "f64",
        };
        f.write_str(name)
    }
}

/// One metadata value. An array keeps its element type, so an empty array still has one (and
/// writes back as it was read); every item of an array has that type.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(ValueType, Vec<Value>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    /// The type of this value.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(..) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    /// A description for error messages: `u32`, `array of string`.
    pub fn type_name(&self) -> String {
        match self {
            Value::Array(t, _) => format!("array of {t}"),
            v => v.value_type().to_string(),
        }
    }

    /// The value of an integer of any width, `None` for other types.
    fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            Value::U8(v) => v.into(),
            Value::I8(v) => v.into(),
            Value::U16(v) => v.into(),
            Value::I16(v) => v.into(),
            Value::U32(v) => v.into(),
            Value::I32(v) => v.into(),
            Value::U64(v) => v.into(),
            Value::I64(v) => v.into(),
            _ => return None,
        })
    }
}

/// A Rust type a metadata value converts to, for [`super::GgufFile::get`]. Integers convert from
/// an integer of any width when the value fits (files differ in which width they write a token
/// id or a count in); `f32` only from F32, `f64` from F32 or F64; strings and bools only from
/// their own type; `Vec<T>` from an array whose items all convert.
pub trait FromValue<'a>: Sized {
    /// What the getter expected, for the error when the value has another type.
    const EXPECTED: &'static str;

    /// The converted value, or why it does not convert.
    fn from_value(v: &'a Value) -> Result<Self, String>;
}

fn wrong_type<T>(v: &Value, expected: &str) -> Result<T, String> {
    Err(format!("is {}, expected {expected}", v.type_name()))
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl FromValue<'_> for $t {
            const EXPECTED: &'static str = concat!("an integer (read as ", stringify!($t), ")");

            fn from_value(v: &Value) -> Result<Self, String> {
                let Some(i) = v.as_i128() else { return wrong_type(v, Self::EXPECTED) };
                <$t>::try_from(i)
                    .map_err(|_| format!("is {i}, out of the range of {}", stringify!($t)))
            }
        }
    )*};
}

from_int!(u8, i8, u16, i16, u32, i32, u64, i64, usize);

impl FromValue<'_> for f32 {
    const EXPECTED: &'static str = "f32";

    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::F32(x) => Ok(*x),
            _ => wrong_type(v, Self::EXPECTED),
        }
    }
}

impl FromValue<'_> for f64 {
    const EXPECTED: &'static str = "f32 or f64";

    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::F32(x) => Ok((*x).into()),
            Value::F64(x) => Ok(*x),
            _ => wrong_type(v, Self::EXPECTED),
        }
    }
}

impl FromValue<'_> for bool {
    const EXPECTED: &'static str = "bool";

    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Bool(x) => Ok(*x),
            _ => wrong_type(v, Self::EXPECTED),
        }
    }
}

impl<'a> FromValue<'a> for &'a str {
    const EXPECTED: &'static str = "string";

    fn from_value(v: &'a Value) -> Result<Self, String> {
        match v {
            Value::String(s) => Ok(s),
            _ => wrong_type(v, Self::EXPECTED),
        }
    }
}

impl<'a> FromValue<'a> for &'a Value {
    const EXPECTED: &'static str = "any value";

    fn from_value(v: &'a Value) -> Result<Self, String> {
        Ok(v)
    }
}

impl<'a, T: FromValue<'a>> FromValue<'a> for Vec<T> {
    const EXPECTED: &'static str = "array";

    fn from_value(v: &'a Value) -> Result<Self, String> {
        let Value::Array(_, items) = v else {
            return wrong_type(v, Self::EXPECTED);
        };
        items
            .iter()
            .enumerate()
            .map(|(i, x)| T::from_value(x).map_err(|e| format!("item {i} {e}")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for id in 0..13 {
            assert_eq!(ValueType::from_id(id).unwrap().id(), id);
        }
        assert_eq!(ValueType::from_id(13), None);
    }

    #[test]
    fn integers_convert_when_they_fit() {
        assert_eq!(u32::from_value(&Value::I32(7)), Ok(7));
        assert_eq!(u32::from_value(&Value::U64(7)), Ok(7));
        let e = u32::from_value(&Value::I32(-1)).unwrap_err();
        assert_eq!(e, "is -1, out of the range of u32");
        let e = u32::from_value(&Value::String("7".into())).unwrap_err();
        assert_eq!(e, "is string, expected an integer (read as u32)");
        let arr = Value::Array(ValueType::I32, vec![Value::I32(1), Value::I32(-2)]);
        assert_eq!(Vec::<i32>::from_value(&arr), Ok(vec![1, -2]));
        assert_eq!(
            Vec::<u32>::from_value(&arr).unwrap_err(),
            "item 1 is -2, out of the range of u32"
        );
    }
}
