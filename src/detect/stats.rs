//! Small robust-statistics toolbox: a rolling sorted window (medians and quantiles in
//! O(window) per update without re-sorting), Theil–Sen slopes and tail probabilities.

use statrs::distribution::{ContinuousCDF, StudentsT};
use statrs::function::erf::{erfc, erfc_inv};

/// Consistency constant that turns a median absolute deviation into a normal sigma.
pub(crate) const MAD_TO_SIGMA: f64 = 1.4826;

/// Key of `value` whose integer order is [`f64::total_cmp`]'s order (the same transform).
#[inline]
fn order_key(value: f64) -> i64 {
    let bits = value.to_bits() as i64;
    bits ^ ((((bits >> 63) as u64) >> 1) as i64)
}

/// Inverse of [`order_key`] (the transform is its own inverse: it keeps the sign bit).
#[inline]
fn from_order_key(key: i64) -> f64 {
    f64::from_bits((key ^ ((((key >> 63) as u64) >> 1) as i64)) as u64)
}

/// The last `capacity` values, kept both in arrival order (a ring) and sorted, so that
/// medians and quantiles cost a binary search and a `memmove` per update instead of a sort.
/// Sorted values are kept as [`order_key`]s: integer comparisons in the binary searches, in
/// exactly the order of `f64::total_cmp`.
#[derive(Debug, Clone)]
pub(crate) struct SortedWindow {
    /// Arrival order as a ring: the oldest value is at `head` once the ring is full.
    order: Vec<i64>,
    head: usize,
    sorted: Vec<i64>,
    capacity: usize,
}

impl SortedWindow {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self { order: Vec::with_capacity(capacity), head: 0, sorted: Vec::with_capacity(capacity), capacity }
    }

    pub(crate) fn len(&self) -> usize {
        self.sorted.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.order.clear();
        self.head = 0;
        self.sorted.clear();
    }

    /// Add a value, evicting the oldest when full. Non-finite values are ignored.
    pub(crate) fn push(&mut self, value: f64) {
        if !value.is_finite() {
            return;
        }
        let key = order_key(value);
        if let Some(oldest) = ring_push(&mut self.order, &mut self.head, self.capacity, key) {
            let old = self.sorted.partition_point(|&x| x < oldest);
            let new = self.sorted.partition_point(|&x| x < key);
            replace_sorted(&mut self.sorted, old, new, key);
            return;
        }
        let index = self.sorted.partition_point(|&x| x < key);
        self.sorted.insert(index, key);
    }

    /// Values in arrival order, oldest first.
    #[cfg(test)]
    pub(crate) fn iter_in_order(&self) -> impl Iterator<Item = f64> + '_ {
        let (newer, older) = self.order.split_at(if self.order.len() == self.capacity { self.head } else { 0 });
        older.iter().chain(newer).map(|&key| from_order_key(key))
    }

    /// Values in ascending order.
    #[cfg(test)]
    pub(crate) fn iter_sorted(&self) -> impl Iterator<Item = f64> + '_ {
        self.sorted.iter().map(|&key| from_order_key(key))
    }

    /// The type-7 median, `quantile(0.5)` with the same arithmetic: its position
    /// `(len - 1) / 2` is an integer or half one, found without float conversions.
    pub(crate) fn median(&self) -> Option<f64> {
        let len = self.sorted.len();
        if len == 0 {
            return None;
        }
        let (low, high) = ((len - 1) / 2, len / 2);
        let fraction = if low == high { 0.0 } else { 0.5 };
        let (low_value, high_value) = (from_order_key(self.sorted[low]), from_order_key(self.sorted[high]));
        Some(low_value + fraction * (high_value - low_value))
    }

    /// Linear-interpolated quantile (type 7) of the window.
    #[cfg(test)]
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        if self.sorted.is_empty() {
            return None;
        }
        let (low, high, fraction) = quantile_position(self.sorted.len(), q);
        let (low_value, high_value) = (from_order_key(self.sorted[low]), from_order_key(self.sorted[high]));
        Some(low_value + fraction * (high_value - low_value))
    }

    /// Number of values `>= value`.
    #[cfg(test)]
    pub(crate) fn count_at_least(&self, value: f64) -> usize {
        // `x < value` as floats: in key order, below the key of `value`, where zero counts
        // as -0.0 (so that -0.0 is not below 0.0).
        let key = order_key(if value == 0.0 { -0.0 } else { value });
        self.sorted.len() - self.sorted.partition_point(|&x| x < key)
    }
}

/// Binades told apart by a [`MedianWindow`]'s bound: values from 2^-31 to 2^31 (smaller ones
/// and zero share the lowest, which bounds nothing; larger ones the highest).
const BINADES: usize = 64;

/// The last `capacity` values, for their exact median and a cheap lower bound of it: a
/// candidate's recent absolute errors, whose median is read at every error only to cap the
/// error at a multiple of it (which a lower bound of the median settles nearly always). The
/// values are counted per binade (the median's binade is followed as values come and go); the
/// sorted keys are kept up to date only on request ([`push`](Self::push)'s `keep_sorted`, or
/// [`make_sorted`](Self::make_sorted)), and an exact median of a stale window sorts a copy.
#[derive(Debug, Clone)]
pub(crate) struct MedianWindow {
    /// Arrival order as a ring: the oldest value is at `head` once the ring is full.
    order: Vec<i64>,
    head: usize,
    capacity: usize,
    /// The keys of `order`, sorted, when `sorted_valid`.
    sorted: Vec<i64>,
    sorted_valid: bool,
    /// Values per binade, the binade of the lower median and the values below it.
    binades: [u16; BINADES],
    median_binade: usize,
    below: usize,
}

impl MedianWindow {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, usize::from(u16::MAX));
        Self {
            order: Vec::with_capacity(capacity),
            head: 0,
            capacity,
            sorted: Vec::with_capacity(capacity),
            sorted_valid: true,
            binades: [0; BINADES],
            median_binade: 0,
            below: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    /// The binade of a key: 0 for zero, negative values and values below 2^-31.
    fn binade(key: i64) -> usize {
        if key <= 0 {
            return 0;
        }
        ((key >> 52) - 1023 + 32).clamp(0, BINADES as i64 - 1) as usize
    }

    /// Add a value, evicting the oldest when full; non-finite values are ignored. The sorted
    /// keys follow when `keep_sorted`, else they are left stale.
    pub(crate) fn push(&mut self, value: f64, keep_sorted: bool) {
        if !value.is_finite() {
            return;
        }
        let key = order_key(value);
        let evicted = ring_push(&mut self.order, &mut self.head, self.capacity, key);
        let entering = Self::binade(key);
        self.binades[entering] += 1;
        if entering < self.median_binade {
            self.below += 1;
        }
        if let Some(oldest) = evicted {
            let leaving = Self::binade(oldest);
            self.binades[leaving] -= 1;
            if leaving < self.median_binade {
                self.below -= 1;
            }
        }
        // The lower median's rank, and the binade that holds it.
        let low = (self.order.len() - 1) / 2;
        while self.below > low {
            self.median_binade -= 1;
            self.below -= usize::from(self.binades[self.median_binade]);
        }
        while self.below + usize::from(self.binades[self.median_binade]) <= low {
            self.below += usize::from(self.binades[self.median_binade]);
            self.median_binade += 1;
        }
        if !keep_sorted {
            self.sorted_valid = false;
        } else if !self.sorted_valid {
            self.make_sorted();
        } else if let Some(oldest) = evicted {
            let old = self.sorted.partition_point(|&x| x < oldest);
            let new = self.sorted.partition_point(|&x| x < key);
            replace_sorted(&mut self.sorted, old, new, key);
        } else {
            let index = self.sorted.partition_point(|&x| x < key);
            self.sorted.insert(index, key);
        }
    }

    /// Bring the sorted keys up to date.
    pub(crate) fn make_sorted(&mut self) {
        if !self.sorted_valid {
            self.sorted.clear();
            self.sorted.extend_from_slice(&self.order);
            self.sorted.sort_unstable();
            self.sorted_valid = true;
        }
    }

    /// A lower bound of the median (of non-negative values): the lower edge of the binade of
    /// the lower median; 0 when that binade bounds nothing or the window is empty.
    pub(crate) fn median_floor(&self) -> f64 {
        if self.order.is_empty() || self.median_binade == 0 {
            return 0.0;
        }
        f64::from_bits(((self.median_binade as u64) + 1023 - 32) << 52)
    }

    /// The type-7 median, as [`SortedWindow::median`] computes it.
    pub(crate) fn median(&self) -> Option<f64> {
        let len = self.order.len();
        if len == 0 {
            return None;
        }
        let (low, high) = ((len - 1) / 2, len / 2);
        let (low_key, high_key) = if self.sorted_valid {
            (self.sorted[low], self.sorted[high])
        } else {
            // Stale: the two middle keys lie in the lower median's binade or the next non-empty
            // one (binades are consecutive ranges of keys): select them among those keys only.
            let mut upper = self.median_binade;
            let mut through = self.below + usize::from(self.binades[upper]);
            while through <= high {
                upper += 1;
                through += usize::from(self.binades[upper]);
            }
            // Those binades' keys: from the lower edge of the first (any key for the lowest) to
            // below the lower edge of the one after the last (any key for the highest).
            let edge = |binade: usize| (binade as i64 - 32 + 1023) << 52;
            let from = if self.median_binade == 0 { i64::MIN } else { edge(self.median_binade) };
            let to = if upper + 1 == BINADES { i64::MAX } else { edge(upper + 1) - 1 };
            let mut buffer = [0_i64; 256];
            let mut heap = Vec::new();
            let keys: &mut [i64] = if self.order.len() <= buffer.len() {
                let mut count = 0;
                for &key in &self.order {
                    buffer[count] = key;
                    count += usize::from(from <= key && key <= to);
                }
                &mut buffer[..count]
            } else {
                heap.reserve_exact(self.order.len());
                heap.extend(self.order.iter().copied().filter(|&key| from <= key && key <= to));
                &mut heap
            };
            let (_, &mut low_key, above) = keys.select_nth_unstable(low - self.below);
            (low_key, if high == low { low_key } else { above.iter().copied().min().unwrap_or(low_key) })
        };
        let fraction = if low == high { 0.0 } else { 0.5 };
        let (low_value, high_value) = (from_order_key(low_key), from_order_key(high_key));
        Some(low_value + fraction * (high_value - low_value))
    }
}

/// Most values a [`LevelWindow`] keeps in fixed arrays.
const SMALL: usize = 32;

/// The last `capacity` values for their median, like a [`SortedWindow`]: a candidate's level
/// window (5 or a day's points). Up to [`SMALL`] values live in fixed arrays, where an update
/// finds the value leaving and slides the one entering to its rank (a few moves, no `memmove`
/// call and no second search); longer windows are a [`SortedWindow`].
// The small variant is the usual one (every hourly or daily series); boxing its arrays would
// add an indirection to every update.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub(crate) enum LevelWindow {
    Small { order: [i64; SMALL], sorted: [i64; SMALL], len: usize, head: usize, capacity: usize },
    Sorted(SortedWindow),
}

impl LevelWindow {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        if capacity <= SMALL {
            Self::Small { order: [0; SMALL], sorted: [0; SMALL], len: 0, head: 0, capacity }
        } else {
            Self::Sorted(SortedWindow::new(capacity))
        }
    }

    fn sorted_keys(&self) -> &[i64] {
        match self {
            Self::Small { sorted, len, .. } => &sorted[..*len],
            Self::Sorted(window) => &window.sorted,
        }
    }

    pub(crate) fn clear(&mut self) {
        match self {
            Self::Small { len, head, .. } => (*len, *head) = (0, 0),
            Self::Sorted(window) => window.clear(),
        }
    }

    /// Add a value, evicting the oldest when full. Non-finite values are ignored.
    pub(crate) fn push(&mut self, value: f64) {
        let Self::Small { order, sorted, len, head, capacity } = self else {
            if let Self::Sorted(window) = self {
                window.push(value);
            }
            return;
        };
        if !value.is_finite() {
            return;
        }
        let key = order_key(value);
        let count = (*len).min(SMALL);
        // The free rank: the leaving value's, or a new one at the end.
        let mut at = if count == *capacity {
            let oldest = std::mem::replace(&mut order[*head], key);
            *head = if *head + 1 == *capacity { 0 } else { *head + 1 };
            let mut at = sorted[..count].partition_point(|&x| x < oldest);
            while at + 1 < count && sorted[at + 1] < key {
                sorted[at] = sorted[at + 1];
                at += 1;
            }
            at
        } else {
            order[count] = key;
            *len = count + 1;
            count
        };
        while at > 0 && sorted[at - 1] > key {
            sorted[at] = sorted[at - 1];
            at -= 1;
        }
        sorted[at] = key;
    }

    /// The type-7 median, as [`SortedWindow::median`] computes it.
    pub(crate) fn median(&self) -> Option<f64> {
        let sorted = self.sorted_keys();
        let len = sorted.len();
        if len == 0 {
            return None;
        }
        let (low, high) = ((len - 1) / 2, len / 2);
        let fraction = if low == high { 0.0 } else { 0.5 };
        let (low_value, high_value) = (from_order_key(sorted[low]), from_order_key(sorted[high]));
        Some(low_value + fraction * (high_value - low_value))
    }

    /// Values in ascending order.
    pub(crate) fn iter_sorted(&self) -> impl Iterator<Item = f64> + '_ {
        self.sorted_keys().iter().map(|&key| from_order_key(key))
    }
}

/// Keys kept per block of a [`LongWindow`] (a block splits at twice as many).
const BLOCK: usize = 128;

/// The last `capacity` values like a [`SortedWindow`], for long windows (thousands of values):
/// the sorted keys are kept in consecutive blocks of up to `2 BLOCK`, so an update moves keys
/// within a block or two instead of a third of the window (a `memmove` of 5–10 kB per point
/// for 2 000–4 000 values); ranks and quantiles add the lengths of the blocks before.
#[derive(Debug, Clone)]
pub(crate) struct LongWindow {
    /// Arrival order as a ring: the oldest value is at `head` once the ring is full.
    order: Vec<i64>,
    head: usize,
    capacity: usize,
    /// Non-empty blocks whose concatenation is sorted.
    blocks: Vec<Vec<i64>>,
    /// The first key of each block.
    firsts: Vec<i64>,
    len: usize,
}

impl LongWindow {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self { order: Vec::with_capacity(capacity), head: 0, capacity, blocks: Vec::new(), firsts: Vec::new(), len: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Values kept at most.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    #[cfg(test)]
    pub(crate) fn clear(&mut self) {
        self.order.clear();
        self.head = 0;
        self.blocks.clear();
        self.firsts.clear();
        self.len = 0;
    }

    /// Add a value, evicting the oldest when full. Non-finite values are ignored.
    pub(crate) fn push(&mut self, value: f64) {
        if !value.is_finite() {
            return;
        }
        let key = order_key(value);
        if let Some(oldest) = ring_push(&mut self.order, &mut self.head, self.capacity, key) {
            let (leaving, entering) = (self.block_of(oldest), self.block_of(key));
            if leaving == entering {
                // One move inside the block.
                let block = &mut self.blocks[leaving];
                let old = block.partition_point(|&x| x < oldest);
                let new = block.partition_point(|&x| x < key);
                replace_sorted(block, old, new, key);
                self.firsts[leaving] = block[0];
                return;
            }
            self.remove(oldest, leaving);
            self.insert(key);
            return;
        }
        self.insert(key);
    }

    /// The last block whose first key is at most `key` (the first block when none is): the
    /// block that holds `key` if it is kept (an earlier block can hold it only when this one
    /// starts with it), and where `key` keeps the order.
    fn block_of(&self, key: i64) -> usize {
        self.firsts.partition_point(|&first| first <= key).saturating_sub(1)
    }

    fn insert(&mut self, key: i64) {
        self.len += 1;
        if self.blocks.is_empty() {
            let mut block = Vec::with_capacity(2 * BLOCK);
            block.push(key);
            self.blocks.push(block);
            self.firsts.push(key);
            return;
        }
        let index = self.block_of(key);
        let block = &mut self.blocks[index];
        let at = block.partition_point(|&x| x < key);
        block.insert(at, key);
        self.firsts[index] = block[0];
        if block.len() >= 2 * BLOCK {
            self.split(index);
        }
    }

    /// Split block `index` in two halves.
    fn split(&mut self, index: usize) {
        let block = &mut self.blocks[index];
        let mut upper = Vec::with_capacity(2 * BLOCK);
        upper.extend_from_slice(&block[BLOCK..]);
        block.truncate(BLOCK);
        self.firsts.insert(index + 1, upper[0]);
        self.blocks.insert(index + 1, upper);
    }

    /// Remove one `key` (kept) from block `index`.
    fn remove(&mut self, key: i64, index: usize) {
        self.len -= 1;
        let block = &mut self.blocks[index];
        let at = block.partition_point(|&x| x < key);
        debug_assert_eq!(block.get(at), Some(&key));
        block.remove(at);
        if let Some(&first) = block.first() {
            self.firsts[index] = first;
        }
        let (small, empty) = (block.len() < BLOCK / 4, block.is_empty());
        // A small block joins its neighbour (and splits again if that makes it too large).
        if small && self.blocks.len() > 1 {
            let lower = if index + 1 < self.blocks.len() { index } else { index - 1 };
            let upper = self.blocks.remove(lower + 1);
            self.firsts.remove(lower + 1);
            let block = &mut self.blocks[lower];
            block.extend_from_slice(&upper);
            self.firsts[lower] = block[0];
            if block.len() >= 2 * BLOCK {
                self.split(lower);
            }
        } else if empty {
            self.blocks.remove(index);
            self.firsts.remove(index);
        }
    }

    /// The key at `rank` (0-based, `rank < len`).
    fn select(&self, mut rank: usize) -> i64 {
        for block in &self.blocks {
            if rank < block.len() {
                return block[rank];
            }
            rank -= block.len();
        }
        unreachable!("rank beyond the window")
    }

    /// Keep the values for which `keep(index, value)` holds, `index` counting in arrival order
    /// from the oldest; the others leave (each a removal from its block, not a rebuild).
    pub(crate) fn retain_in_order(&mut self, mut keep: impl FnMut(usize, f64) -> bool) {
        let split = if self.order.len() == self.capacity { self.head } else { 0 };
        let mut kept = Vec::with_capacity(self.capacity);
        let mut dropped = Vec::new();
        for (index, &key) in self.order[split..].iter().chain(&self.order[..split]).enumerate() {
            if keep(index, from_order_key(key)) { kept.push(key) } else { dropped.push(key) }
        }
        if dropped.is_empty() {
            return;
        }
        for key in dropped {
            let block = self.block_of(key);
            self.remove(key, block);
        }
        self.order = kept;
        self.head = 0;
    }

    /// Values in arrival order, oldest first.
    pub(crate) fn iter_in_order(&self) -> impl Iterator<Item = f64> + '_ {
        let (newer, older) = self.order.split_at(if self.order.len() == self.capacity { self.head } else { 0 });
        older.iter().chain(newer).map(|&key| from_order_key(key))
    }

    /// Values in ascending order.
    #[cfg(test)]
    pub(crate) fn iter_sorted(&self) -> impl Iterator<Item = f64> + '_ {
        self.blocks.iter().flatten().map(|&key| from_order_key(key))
    }

    /// Values in ascending order from rank `skip` on.
    pub(crate) fn iter_sorted_from(&self, mut skip: usize) -> impl Iterator<Item = f64> + '_ {
        let mut first = 0;
        while first < self.blocks.len() && skip >= self.blocks[first].len() {
            skip -= self.blocks[first].len();
            first += 1;
        }
        self.blocks[first..].iter().flatten().skip(skip).map(|&key| from_order_key(key))
    }

    /// Linear-interpolated quantile (type 7) of the window, as [`SortedWindow::quantile`].
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        if self.len == 0 {
            return None;
        }
        let (low, high, fraction) = quantile_position(self.len, q);
        let low_value = from_order_key(self.select(low));
        let high_value = if high == low { low_value } else { from_order_key(self.select(high)) };
        Some(low_value + fraction * (high_value - low_value))
    }

    /// [`quantile`](Self::quantile) of each of the `qs` into `out`, in one walk over the blocks
    /// while they increase (nothing when the window is empty).
    pub(crate) fn quantiles(&self, qs: &[f64], out: &mut [f64]) {
        if self.len == 0 {
            return;
        }
        // The blocks before `block` hold `before` keys (ranks mostly grow: a lower one, the
        // lower neighbour of a quantile after the upper one of the previous, walks again).
        let (mut block, mut before) = (0, 0);
        let mut key_at = |rank: usize| {
            if rank < before {
                (block, before) = (0, 0);
            }
            while rank - before >= self.blocks[block].len() {
                before += self.blocks[block].len();
                block += 1;
            }
            self.blocks[block][rank - before]
        };
        for (&q, out) in qs.iter().zip(out.iter_mut()) {
            let (low, high, fraction) = quantile_position(self.len, q);
            let low_value = from_order_key(key_at(low));
            let high_value = if high == low { low_value } else { from_order_key(key_at(high)) };
            *out = low_value + fraction * (high_value - low_value);
        }
    }

    /// [`count_at_least`](Self::count_at_least) of each of the `values` into `out`, in one walk
    /// over the blocks while they increase.
    pub(crate) fn counts_at_least(&self, values: &[f64], out: &mut [usize]) {
        let (mut index, mut before) = (0, 0);
        for (&value, out) in values.iter().zip(out.iter_mut()) {
            let key = order_key(if value == 0.0 { -0.0 } else { value });
            let last = self.firsts.partition_point(|&first| first < key).saturating_sub(1);
            let Some(block) = self.blocks.get(last) else {
                *out = 0;
                continue;
            };
            if last < index {
                (index, before) = (0, 0);
            }
            while index < last {
                before += self.blocks[index].len();
                index += 1;
            }
            *out = self.len - before - block.partition_point(|&x| x < key);
        }
    }

    /// Number of values `>= value`, as [`SortedWindow::count_at_least`].
    pub(crate) fn count_at_least(&self, value: f64) -> usize {
        let key = order_key(if value == 0.0 { -0.0 } else { value });
        // Keys below `key`: the blocks before the last one starting below it, and part of it.
        let index = self.firsts.partition_point(|&first| first < key).saturating_sub(1);
        let Some(block) = self.blocks.get(index) else {
            return 0;
        };
        let before: usize = self.blocks[..index].iter().map(Vec::len).sum();
        self.len - before - block.partition_point(|&x| x < key)
    }
}

/// Append `key` to a window's arrival-order ring of `capacity` keys (oldest at `head` once
/// full): the key it replaced, if the ring was full.
#[inline]
fn ring_push(order: &mut Vec<i64>, head: &mut usize, capacity: usize, key: i64) -> Option<i64> {
    if order.len() < capacity {
        order.push(key);
        return None;
    }
    let oldest = std::mem::replace(&mut order[*head], key);
    *head = if *head + 1 == capacity { 0 } else { *head + 1 };
    Some(oldest)
}

/// Replace the sorted value at rank `old` (the one leaving) with `value`, whose rank among the
/// values is `new` (its insertion point before the removal): the values between the two ranks
/// shift by one, one short move instead of a removal and an insertion.
#[inline]
pub(crate) fn replace_sorted<T: Copy>(sorted: &mut [T], old: usize, new: usize, value: T) {
    if new > old {
        sorted.copy_within(old + 1..new, old);
        sorted[new - 1] = value;
    } else {
        sorted.copy_within(new..old, new + 1);
        sorted[new] = value;
    }
}

/// Ranks below and above the type-7 quantile `q` of `len` sorted values and the weight of the
/// upper one: `floor` and `ceil` of `h = (len - 1) q` by integer conversion (`h >= 0`).
#[inline]
fn quantile_position(len: usize, q: f64) -> (usize, usize, f64) {
    let h = (len - 1) as f64 * q.clamp(0.0, 1.0);
    let low = h as usize;
    let high = if (low as f64) < h { low + 1 } else { low };
    (low, high, h - low as f64)
}

/// Type-7 quantile of an already sorted slice.
pub(crate) fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let (low, high, fraction) = quantile_position(sorted.len(), q);
    Some(sorted[low] + fraction * (sorted[high] - sorted[low]))
}

/// Median of a slice (reorders it).
pub(crate) fn median_in_place(values: &mut [f64]) -> Option<f64> {
    match values.len() {
        0 => return None,
        // (An hour's one deviation of an hourly series, 24 times a day: no selection.)
        1 => return Some(values[0]),
        _ => {}
    }
    let mid = values.len() / 2;
    let (_, upper, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *upper;
    if values.len() % 2 == 1 {
        Some(upper)
    } else {
        let lower = values[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some((lower + upper) / 2.0)
    }
}

/// Median of a slice sorted in `f64::total_cmp` order, exactly as [`median_in_place`]
/// computes it: the middle value, or the mean of the two middle values.
pub(crate) fn median_of_sorted(sorted: &[f64]) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let mid = sorted.len() / 2;
    let upper = sorted[mid];
    if sorted.len() % 2 == 1 { Some(upper) } else { Some((sorted[mid - 1] + upper) / 2.0) }
}

/// Run `f` on a scratch copy of `values` (on the stack when it is small).
fn with_copy<R>(values: impl ExactSizeIterator<Item = f64>, f: impl FnOnce(&mut [f64]) -> R) -> R {
    fn on_stack<const N: usize, R>(
        values: impl Iterator<Item = f64>,
        len: usize,
        f: impl FnOnce(&mut [f64]) -> R,
    ) -> R {
        let mut buffer = [0.0; N];
        for (target, value) in buffer.iter_mut().zip(values) {
            *target = value;
        }
        f(&mut buffer[..len])
    }
    match values.len() {
        len @ 0..=8 => on_stack::<8, R>(values, len, f),
        len @ 9..=64 => on_stack::<64, R>(values, len, f),
        _ => {
            let mut copy: Vec<f64> = values.collect();
            f(&mut copy)
        }
    }
}

/// Median of a slice without touching it.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    with_copy(values.iter().copied(), median_in_place)
}

/// Median of the values an iterator yields (without an allocation when they are few).
pub(crate) fn median_of(values: impl ExactSizeIterator<Item = f64>) -> Option<f64> {
    with_copy(values, median_in_place)
}

/// Theil–Sen slope: the median of all pairwise slopes (robust to 29 % outliers).
pub(crate) fn theil_sen(xs: &[f64], ys: &[f64]) -> Option<f64> {
    let pairs = xs.len() * xs.len().saturating_sub(1) / 2;
    let mut stack = [0.0; 32];
    let mut heap = Vec::new();
    let slopes: &mut [f64] = if pairs <= stack.len() {
        &mut stack
    } else {
        heap.resize(pairs, 0.0);
        &mut heap
    };
    let mut count = 0;
    for i in 0..xs.len() {
        for j in (i + 1)..xs.len() {
            let dx = xs[j] - xs[i];
            if dx != 0.0 {
                slopes[count] = (ys[j] - ys[i]) / dx;
                count += 1;
            }
        }
    }
    median_in_place(&mut slopes[..count])
}

/// Upper tail of the standard normal, P(Z > z).
pub(crate) fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// `-log10 P(Z > z)`, accurate far into the tail where the probability underflows.
pub(crate) fn normal_neg_log10_sf(z: f64) -> f64 {
    if z < 8.0 {
        -normal_sf(z).max(f64::MIN_POSITIVE).log10()
    } else {
        // Mills-ratio asymptote: ln P ≈ -z²/2 - ln(z √(2π)).
        let ln_p = -0.5 * z * z - (z * (2.0 * std::f64::consts::PI).sqrt()).ln();
        -ln_p / std::f64::consts::LN_10
    }
}

/// z such that P(Z > z) = p.
pub(crate) fn normal_upper_quantile(p: f64) -> f64 {
    std::f64::consts::SQRT_2 * erfc_inv(2.0 * p.clamp(1e-300, 1.0))
}

/// `-log10 P(T > t)` for Student's t with `dof` degrees of freedom.
pub(crate) fn student_t_neg_log10_sf(t: f64, dof: f64) -> f64 {
    if dof >= 60.0 {
        return normal_neg_log10_sf(t);
    }
    match StudentsT::new(0.0, 1.0, dof) {
        Ok(dist) => {
            let p = dist.sf(t);
            if p > 1e-280 {
                -p.log10()
            } else {
                // Polynomial tail: P ≈ c · t^-dof, continue from a computable point.
                let anchor = 1e3_f64.max(t / 1e3);
                let p_anchor = dist.sf(anchor).max(1e-300);
                -p_anchor.log10() + dof * (t / anchor).log10()
            }
        }
        Err(_) => normal_neg_log10_sf(t),
    }
}

/// Student-t quantiles already computed on this thread, by (p, dof) bits: every series asks
/// for the same few (its sensitivity's rate at 2 to 59 degrees of freedom while its history
/// is short), and each costs an inverse incomplete beta function.
type QuantileMemo = std::collections::HashMap<(u64, u64), f64>;

thread_local! {
    static STUDENT_T_QUANTILES: std::cell::RefCell<QuantileMemo> = std::cell::RefCell::new(QuantileMemo::new());
}

/// Entries the memo keeps before it starts over (numeric sensitivities could vary freely).
const STUDENT_T_MEMO_LIMIT: usize = 4_096;

/// t such that P(T > t) = p for Student's t with `dof` degrees of freedom.
pub(crate) fn student_t_upper_quantile(p: f64, dof: f64) -> f64 {
    if dof >= 60.0 {
        return normal_upper_quantile(p);
    }
    let key = (p.to_bits(), dof.to_bits());
    if let Some(known) = STUDENT_T_QUANTILES.with(|memo| memo.borrow().get(&key).copied()) {
        return known;
    }
    let quantile = student_t_upper_quantile_uncached(p, dof);
    STUDENT_T_QUANTILES.with(|memo| {
        let mut memo = memo.borrow_mut();
        if memo.len() >= STUDENT_T_MEMO_LIMIT {
            memo.clear();
        }
        memo.insert(key, quantile);
    });
    quantile
}

fn student_t_upper_quantile_uncached(p: f64, dof: f64) -> f64 {
    match StudentsT::new(0.0, 1.0, dof) {
        Ok(dist) => dist.inverse_cdf(1.0 - p.clamp(1e-15, 0.5)),
        Err(_) => normal_upper_quantile(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_window_retains_values_as_a_rebuilt_one_holds_them() {
        let mut state = 7_u64;
        let mut next = || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((state >> 11) % 5_000) as f64 / 100.0
        };
        for (capacity, pushed) in [(2_000, 1_500), (2_000, 5_000), (300, 301)] {
            let mut window = LongWindow::new(capacity);
            for _ in 0..pushed {
                window.push(next());
            }
            // The oldest third's values of 20 and more leave.
            let old = window.len() / 3;
            let mut rebuilt = LongWindow::new(capacity);
            for (index, value) in window.iter_in_order().enumerate() {
                if index >= old || value < 20.0 {
                    rebuilt.push(value);
                }
            }
            window.retain_in_order(|index, value| index >= old || value < 20.0);
            assert!(window.len() < capacity);
            assert_eq!(window.len(), rebuilt.len());
            assert!(window.iter_in_order().eq(rebuilt.iter_in_order()));
            assert!(window.iter_sorted().eq(rebuilt.iter_sorted()));
            // And both go on alike, through evictions.
            for _ in 0..capacity + 50 {
                let value = next();
                window.push(value);
                rebuilt.push(value);
            }
            assert!(window.iter_in_order().eq(rebuilt.iter_in_order()));
            assert!(window.iter_sorted().eq(rebuilt.iter_sorted()));
            assert_eq!(window.quantile(0.5), rebuilt.quantile(0.5));
        }
    }

    #[test]
    fn sorted_window_tracks_median_and_evicts_oldest() {
        let mut window = SortedWindow::new(3);
        for value in [5.0, 1.0, 3.0] {
            window.push(value);
        }
        assert_eq!(window.median(), Some(3.0));
        window.push(10.0); // evicts 5
        assert_eq!(window.iter_in_order().collect::<Vec<_>>(), vec![1.0, 3.0, 10.0]);
        assert_eq!(window.median(), Some(3.0));
        assert_eq!(window.quantile(1.0), Some(10.0));
        assert_eq!(window.count_at_least(3.0), 2);
        window.push(f64::NAN);
        assert_eq!(window.len(), 3);
    }

    #[test]
    fn a_long_window_answers_as_a_sorted_window_does() {
        // Ties, signed zeros and non-finite values; a drift that empties the lowest blocks
        // (merges) and fills new ones (splits); a window cleared and refilled.
        let mut state = 11_u64;
        let mut next = |step: usize| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            match (state >> 33) % 12 {
                0 => 0.0,
                1 => -0.0,
                2 => f64::NAN,
                3 => 1.5,
                4 => f64::INFINITY,
                _ => ((state >> 11) % 4_000) as f64 / 7.0 + if step > 6_000 { step as f64 } else { 0.0 },
            }
        };
        for capacity in [1, 300, 1_000] {
            let (mut sorted, mut long) = (SortedWindow::new(capacity), LongWindow::new(capacity));
            for step in 0..9_000 {
                if step == 4_000 {
                    sorted.clear();
                    long.clear();
                }
                let value = next(step);
                sorted.push(value);
                long.push(value);
                if step % 97 == 0 || step > 8_990 {
                    assert_eq!(long.len(), sorted.len());
                    assert!(long.iter_sorted().eq(sorted.iter_sorted()), "capacity {capacity}, step {step}");
                    assert!(long.iter_in_order().eq(sorted.iter_in_order()));
                    for skip in [0, 1, 127, 128, 500, 2_000] {
                        assert!(long.iter_sorted_from(skip).eq(sorted.iter_sorted().skip(skip)));
                    }
                    let qs = [0.0, 0.05, 0.1, 0.5, 0.5, 0.95, 0.99, 1.0];
                    let mut quantiles = [f64::NAN; 8];
                    long.quantiles(&qs, &mut quantiles);
                    for (&q, quantile) in qs.iter().zip(quantiles) {
                        assert_eq!(long.quantile(q).map(f64::to_bits), sorted.quantile(q).map(f64::to_bits));
                        if !sorted.is_empty() {
                            assert_eq!(Some(quantile.to_bits()), sorted.quantile(q).map(f64::to_bits));
                        }
                    }
                    let probes = [-1.0, -0.0, 0.0, 1.5, 1.5, 100.0, 571.0, 1e9];
                    let mut counts = [usize::MAX; 8];
                    long.counts_at_least(&probes, &mut counts);
                    for (&probe, count) in probes.iter().zip(counts) {
                        assert_eq!(long.count_at_least(probe), sorted.count_at_least(probe), "{probe}");
                        assert_eq!(count, sorted.count_at_least(probe), "{probe}");
                    }
                    assert_eq!(long.count_at_least(value), sorted.count_at_least(value));
                }
            }
        }
    }

    #[test]
    fn a_median_window_has_the_exact_median_and_a_floor_below_it() {
        // Absolute errors over many binades, zeros and ties; sorted kept on some pushes only.
        let mut state = 5_u64;
        let mut next = || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            match (state >> 33) % 9 {
                0 => 0.0,
                1 => 1.0,
                2 => f64::NAN,
                3 => 1e-12,
                4 => 3e12,
                _ => ((state >> 11) % 100_000) as f64 / 1_000.0 * 2f64.powi(((state >> 40) % 20) as i32 - 10),
            }
        };
        for capacity in [1, 2, 7, 128, 300] {
            let (mut sorted, mut median) = (SortedWindow::new(capacity), MedianWindow::new(capacity));
            for step in 0..3_000 {
                let value = next();
                sorted.push(value);
                median.push(value, step % 5 == 0);
                if step % 7 == 0 {
                    median.make_sorted();
                }
                assert_eq!(median.len(), sorted.len());
                let exact = sorted.median();
                assert_eq!(median.median().map(f64::to_bits), exact.map(f64::to_bits), "capacity {capacity}");
                let floor = median.median_floor();
                assert!(exact.is_some_and(|m| floor <= m) || floor == 0.0, "{floor} above {exact:?}");
                // The floor is within a factor of two of the lower median (from 2^-31 to 2^31).
                let lower = sorted.iter_sorted().nth(sorted.len().saturating_sub(1) / 2);
                assert!(lower.is_none_or(|m| m < 2f64.powi(-31) || m >= 2f64.powi(31) || m < 2.0 * floor));
            }
        }
    }

    #[test]
    fn a_level_window_answers_as_a_sorted_window_does() {
        let mut state = 3_u64;
        let mut next = || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            match (state >> 33) % 8 {
                0 => 0.0,
                1 => -0.0,
                2 => f64::NAN,
                3 => 2.5,
                _ => ((state >> 11) % 1_000) as f64 / 9.0 - 40.0,
            }
        };
        for capacity in [1, 2, 5, 24, 32, 33, 289] {
            let (mut sorted, mut level) = (SortedWindow::new(capacity), LevelWindow::new(capacity));
            for step in 0..2_000 {
                if step == 700 {
                    sorted.clear();
                    level.clear();
                }
                let value = next();
                sorted.push(value);
                level.push(value);
                assert_eq!(level.median().map(f64::to_bits), sorted.median().map(f64::to_bits), "capacity {capacity}");
                assert!(level.iter_sorted().eq(sorted.iter_sorted()));
            }
        }
    }

    #[test]
    fn theil_sen_ignores_an_outlier() {
        let xs: Vec<f64> = (0..10).map(f64::from).collect();
        let mut ys: Vec<f64> = xs.iter().map(|x| 2.0 * x + 1.0).collect();
        ys[4] = 100.0;
        assert_eq!(theil_sen(&xs, &ys), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[-0.0]).map(f64::to_bits), Some((-0.0_f64).to_bits()));
    }

    #[test]
    fn tail_probabilities_are_consistent() {
        assert!((normal_neg_log10_sf(normal_upper_quantile(1e-4)) - 4.0).abs() < 1e-6);
        assert!((student_t_neg_log10_sf(student_t_upper_quantile(1e-3, 4.0), 4.0) - 3.0).abs() < 1e-4);
        // Far tails stay finite and monotone.
        assert!(normal_neg_log10_sf(50.0) > normal_neg_log10_sf(40.0));
        assert!(student_t_neg_log10_sf(1e9, 3.0).is_finite());
    }
}
