//! A config held as a shared struct plus the arch's own fields but stored as one flat JSON
//! object (U-ViT's two configs share their sizes; the in-context LDM extends DiT's): each part
//! still refuses unknown fields by name.
use serde::de::{DeserializeOwned, Error};
use serde::{Deserialize, Deserializer, Serialize};

/// (base, own) of one JSON object: `own` reads the keys `own_keys`, `base` the others.
pub fn split<'de, D: Deserializer<'de>, B: DeserializeOwned, E: DeserializeOwned>(deserializer: D, own_keys: &[&str]) -> Result<(B, E), D::Error> {
    let mut base = serde_json::Map::deserialize(deserializer)?;
    let own: serde_json::Map<_, _> = own_keys.iter().filter_map(|k| base.remove_entry(*k)).collect();
    let base = B::deserialize(serde_json::Value::Object(base)).map_err(D::Error::custom)?;
    let own = E::deserialize(serde_json::Value::Object(own)).map_err(D::Error::custom)?;
    Ok((base, own))
}

/// The two parts as one object.
#[derive(Serialize)]
pub struct Joined<'a, B, E> {
    #[serde(flatten)]
    pub base: &'a B,
    #[serde(flatten)]
    pub own: &'a E,
}

/// Declares `$name { $base: $base_ty, $own: $own_ty }`, stored flat (`$own_ty`'s fields are
/// the keys listed), its base's fields read through `Deref`.
macro_rules! flat_config {
    ($(#[$doc:meta])* $name:ident { $base:ident: $base_ty:ty, $own:ident: $own_ty:ty } keys [$($key:literal),*]) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name {
            pub $base: $base_ty,
            pub $own: $own_ty,
        }

        impl std::ops::Deref for $name {
            type Target = $base_ty;
            fn deref(&self) -> &$base_ty {
                &self.$base
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
                let ($base, $own) = $crate::models::flat_config::split(deserializer, &[$($key),*])?;
                Ok($name { $base, $own })
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
                serde::Serialize::serialize(&$crate::models::flat_config::Joined { base: &self.$base, own: &self.$own }, serializer)
            }
        }
    };
}
pub(crate) use flat_config;
