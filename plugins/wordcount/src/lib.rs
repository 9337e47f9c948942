//! Word count: a word is a maximal run of ASCII letters and digits, lowercased; output lines are
//! `word<TAB>count`. Counts are emitted with `Emitter::add`, so map-side combining keeps one
//! running sum per word and batch; the combiner adds up those sums before the shuffle.
use mr_sdk::prelude::*;

#[derive(Default)]
pub struct WordCount {
    word: Vec<u8>,
}

impl Job for WordCount {
    const INFO: JobInfo = JobInfo::new("wordcount", "0.1.0")
        .description("Counts words (runs of ASCII letters and digits, lowercased).");
}

/// Maps ASCII letters and digits to their lowercase form and every other byte to 0: one table
/// lookup per byte both finds word boundaries and lowercases.
const WORD_BYTE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() {
            table[b] = c.to_ascii_lowercase();
        }
        b += 1;
    }
    table
};

impl Mapper for WordCount {
    fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
        // One pass per word: look each byte up once, copying the lowercased word into a stack
        // buffer (a rare longer word goes through `self.word`).
        let mut word = [0u8; 32];
        let mut bytes = record.value.iter();
        while let Some(&b) = bytes.next() {
            let mut c = WORD_BYTE[b as usize];
            if c == 0 {
                continue;
            }
            let mut n = 0;
            loop {
                if n < word.len() {
                    word[n] = c;
                } else {
                    if n == word.len() {
                        self.word.clear();
                        self.word.extend_from_slice(&word);
                    }
                    self.word.push(c);
                }
                n += 1;
                c = match bytes.next() {
                    Some(&b) => WORD_BYTE[b as usize],
                    None => 0,
                };
                if c == 0 {
                    break;
                }
            }
            if n <= word.len() {
                out.add(&word[..n], 1);
            } else {
                out.add(&self.word, 1);
            }
        }
        Ok(())
    }
}

impl Combiner for WordCount {
    fn combine(
        &mut self,
        _key: &[u8],
        values: &mut Values<'_>,
        out: &mut ValueEmitter<'_>,
    ) -> Result {
        out.emit_u64(values.sum_u64()?);
        Ok(())
    }
}

impl Reducer for WordCount {
    fn reduce(&mut self, key: &[u8], values: &mut Values<'_>, out: &mut Emitter) -> Result {
        out.emit_u64(key, values.sum_u64()?);
        Ok(())
    }
}

mr_sdk::export_job!(WordCount: map, combine, reduce);

#[cfg(test)]
mod tests {
    use super::*;
    use mr_sdk::testing::Harness;

    #[test]
    fn words_longer_than_the_stack_buffer_count_too() {
        let long = "X".repeat(40);
        let line = format!("{long} a {long}, {}", long.to_lowercase());
        let out = Harness::new()
            .run_mapreduce_combined::<WordCount>(&[&line])
            .unwrap();
        assert_eq!(
            out.lines(),
            ["a\t1".to_string(), format!("{}\t3", long.to_lowercase())]
        );
    }

    #[test]
    fn counts_words_case_insensitively() {
        let out = Harness::new()
            .run_mapreduce_combined::<WordCount>(&["The cat, the HAT.", "", "r2d2 café"])
            .unwrap();
        assert_eq!(
            out.lines(),
            ["caf\t1", "cat\t1", "hat\t1", "r2d2\t1", "the\t2"]
        );
    }
}
