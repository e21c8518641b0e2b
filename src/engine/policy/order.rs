//! Sorting a tick's lists by integer keys: at 10,000 domains the policy's
//! sorts were a fifth of a step when they compared tuples through the
//! slots. Each key is packed with its item's position into one `u128`:
//! plain integers to sort, whose low bits say where each item goes.

/// Sorts `items` by `key` (whose values need at most `key_bits` bits), ties
/// kept in their present order, as a stable sort would.
pub(super) fn sort_by_packed_key<T>(items: &mut [T], key_bits: u32, key: impl Fn(&T) -> u128) {
    let len = items.len();
    if len < 2 {
        return;
    }
    let position_bits = usize::BITS - (len - 1).leading_zeros();
    if key_bits + position_bits > u128::BITS {
        // Never at Xen's domain counts; still correct beyond them.
        items.sort_by_cached_key(|item| key(item));
        return;
    }
    let mask = (1u128 << position_bits) - 1;
    let mut packed: Vec<u128> = items
        .iter()
        .enumerate()
        .map(|(at, item)| key(item) << position_bits | at as u128)
        .collect();
    // A stable sort comparing keys alone: ties keep their order, and runs
    // of equal keys (claims of one class often ask alike) cost little.
    packed.sort_by_key(|k| k >> position_bits);
    // Moves each item to its place, following where earlier swaps sent
    // the item that belongs there (as `sort_by_cached_key` does).
    for at in 0..len {
        let mut from = (packed[at] & mask) as usize;
        while from < at {
            from = (packed[from] & mask) as usize;
        }
        packed[at] = packed[at] & !mask | from as u128;
        items.swap(at, from);
    }
}

/// A key whose integer order is `f64::total_cmp`'s order.
pub(super) fn total_order_key(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_sort_key_orders_floats_as_total_cmp_does(a in any::<f64>(), b in any::<f64>()) {
            prop_assert_eq!(total_order_key(a).cmp(&total_order_key(b)), a.total_cmp(&b));
        }

        #[test]
        fn packed_sorting_orders_as_a_stable_sort(
            keys in proptest::collection::vec(0u128..8, 0..200),
            key_bits in prop_oneof![Just(3u32), Just(127u32)],
        ) {
            // Items remember where they started, so ties show their order.
            let mut items: Vec<(u128, usize)> = keys.iter().copied().zip(0..).collect();
            let mut expected = items.clone();
            expected.sort_by_key(|item| item.0);
            sort_by_packed_key(&mut items, key_bits, |item| item.0);
            prop_assert_eq!(items, expected);
        }
    }

    #[test]
    fn the_sort_key_orders_the_edges() {
        let edges = [
            f64::NEG_INFINITY,
            -1.0,
            -0.0,
            0.0,
            1e-300,
            1.0,
            f64::INFINITY,
            f64::NAN,
        ];
        for pair in edges.windows(2) {
            assert!(
                total_order_key(pair[0]) < total_order_key(pair[1]),
                "{pair:?}"
            );
        }
    }

    #[test]
    fn keys_as_wide_as_the_integer_sort_too() {
        let mut items = vec![u128::MAX, 0, u128::MAX - 1, 0];
        sort_by_packed_key(&mut items, 128, |&k| k);
        assert_eq!(items, [0, 0, u128::MAX - 1, u128::MAX]);
    }
}
