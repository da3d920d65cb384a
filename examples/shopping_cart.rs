//! The Dynamo paper's shopping cart (§4.4), with a semantic merge.
//!
//! Two shoppers add items to the same cart at the same time, from the same
//! starting version. Dynamo keeps both writes as siblings instead of letting
//! one win; the application then merges them (here: the union of the items)
//! and writes the result with the merged context, which collapses the
//! siblings into one.
//!
//! Run against a dev cluster:
//!
//! ```text
//! cargo run --release -- up --nodes 5 --detach
//! cargo run --example shopping_cart
//! ```
//!
//! The example finds the cluster through `DYNAMO_HOME` (or `--home`'s default).

use std::collections::BTreeSet;

use dynamo::client::{Client, GetOptions, PutOptions};
use dynamo::home::Home;

fn items(bytes: &[u8]) -> BTreeSet<String> {
    String::from_utf8_lossy(bytes)
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn encode(items: &BTreeSet<String>) -> Vec<u8> {
    items
        .iter()
        .cloned()
        .collect::<Vec<_>>()
        .join(",")
        .into_bytes()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let home = Home::locate(std::env::var_os("DYNAMO_HOME").map(Into::into));
    let client = Client::new(home.load_manifest()?, home.client_credentials()?)?;
    let (bucket, key) = ("carts", format!("cart-{}", std::process::id()));

    // Start the cart with one item and remember its context.
    let start = client
        .put(
            bucket,
            key.as_bytes(),
            b"milk".to_vec(),
            None,
            &PutOptions::default(),
        )
        .await?;

    // Two shoppers, both starting from that version, add different items.
    for item in ["milk,eggs", "milk,bread"] {
        client
            .put(
                bucket,
                key.as_bytes(),
                item.as_bytes().to_vec(),
                Some(&start),
                &PutOptions::default(),
            )
            .await?;
    }

    let read = client
        .get(bucket, key.as_bytes(), &GetOptions::default())
        .await?;
    let siblings: Vec<_> = read.object.live_siblings().collect();
    println!("{} siblings:", siblings.len());
    for s in &siblings {
        let value = s.value.as_deref().unwrap_or_default();
        println!(
            "  {:<12} clock {}",
            String::from_utf8_lossy(value),
            s.clock()
        );
    }

    // Semantic merge: the union of every sibling's items.
    let merged: BTreeSet<String> = siblings
        .iter()
        .flat_map(|s| items(s.value.as_deref().unwrap_or_default()))
        .collect();
    client
        .put(
            bucket,
            key.as_bytes(),
            encode(&merged),
            Some(&read.context_token),
            &PutOptions::default(),
        )
        .await?;

    let after = client
        .get(bucket, key.as_bytes(), &GetOptions::default())
        .await?;
    let values: Vec<String> = after
        .object
        .live_siblings()
        .map(|s| String::from_utf8_lossy(s.value.as_deref().unwrap_or_default()).into_owned())
        .collect();
    println!("after the merge: {values:?}");
    assert_eq!(values, vec!["bread,eggs,milk".to_string()]);
    Ok(())
}
