//! Inverted index: word → sorted, de-duplicated `file:line` locations, as
//! `word<TAB>file:line,file:line,…`. Words are defined as in word count; locations sort by file
//! name, then numerically by line.
use mr_sdk::prelude::*;

#[derive(Default)]
pub struct InvertedIndex {
    seen: Vec<Vec<u8>>,
}

impl Job for InvertedIndex {
    const INFO: JobInfo = JobInfo::new("inverted-index", "0.1.0")
        .description("Lists, for every word, the file:line locations where it occurs.");
}

impl Mapper for InvertedIndex {
    fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
        self.seen.clear();
        // Asked of the host once per record (contract 0.2.0 sends records without keys), and
        // only for records with a word.
        let mut location = None;
        for word in record.value.split(|b| !b.is_ascii_alphanumeric()) {
            let word = word.to_ascii_lowercase();
            if !word.is_empty() && !self.seen.contains(&word) {
                let location = location.get_or_insert_with(|| record.location());
                out.emit(&word, location.as_bytes());
                self.seen.push(word);
            }
        }
        Ok(())
    }
}

/// Splits `file:line` at its last colon into (file, line number).
fn location(value: &[u8]) -> Result<(&[u8], u64)> {
    let colon = value.iter().rposition(|&b| b == b':');
    let (file, line) = colon
        .map(|i| (&value[..i], &value[i + 1..]))
        .ok_or_else(|| Error::new("location without `:line`"))?;
    Ok((file, mr_sdk::parse_u64(line)?))
}

impl Reducer for InvertedIndex {
    fn reduce(&mut self, key: &[u8], values: &mut Values<'_>, out: &mut Emitter) -> Result {
        let mut locations = values.to_vecs();
        locations.sort_by_cached_key(|v| location(v).map(|(f, l)| (f.to_vec(), l)).ok());
        locations.dedup();
        out.emit(key, locations.join(&b","[..]));
        Ok(())
    }
}

mr_sdk::export_job!(InvertedIndex: map, reduce);

#[cfg(test)]
mod tests {
    use super::*;
    use mr_sdk::testing::Harness;

    #[test]
    fn lists_sorted_unique_locations() {
        let out = Harness::new()
            .run_mapreduce::<InvertedIndex>(&["b a b", "x", "A"].repeat(4))
            .unwrap();
        // Line 10 sorts after line 9: numeric, not textual, order.
        let a = out
            .lines()
            .into_iter()
            .find(|l| l.starts_with("a\t"))
            .unwrap();
        assert_eq!(
            a,
            "a\tinput:1,input:3,input:4,input:6,input:7,input:9,input:10,input:12"
        );
        assert_eq!(out.lines().len(), 3);
    }
}
