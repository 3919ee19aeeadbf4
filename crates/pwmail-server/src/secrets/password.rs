//! New-password rules (after NIST SP 800-63B) and argon2id hashing.
//!
//! Passwords are Unicode-normalised with NFKC ([`normalize`]) before they
//! are checked, hashed or verified, as SP 800-63B advises: the same password
//! typed on two keyboards (composed `é` or `e` + combining accent) is the
//! same password. Hashes set before normalisation still verify (see
//! `app::users::check_password`).
//!
//! Rules: both fields equal; no control characters (NUL, tab, newline…); at
//! least `min_length` characters; at most [`MAX_BYTES`] (to bound hashing
//! work, far above the 64 characters NIST says to allow); no composition
//! rules; not on the built-in list of common passwords; a zxcvbn score of at
//! least 3 given the user's email and name.

use std::sync::Arc;

use unicode_normalization::UnicodeNormalization as _;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordVerifier, Version};
use tokio::sync::Semaphore;

pub const MAX_BYTES: usize = 1024;
/// zxcvbn's cost grows with length; a strong prefix is strong enough.
const ZXCVBN_PREFIX_CHARS: usize = 100;

/// Passwords people pick first; rejected whatever zxcvbn says.
const COMMON: &str = include_str!("../../templates/common-passwords.txt");

/// The password as it is checked, hashed and verified: NFKC.
pub fn normalize(password: &str) -> String {
    password.nfkc().collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    Mismatch,
    /// NUL, tab, newline or another control character.
    ControlCharacter,
    TooShort {
        min: usize,
    },
    TooLong,
    Common,
    Guessable {
        hint: Option<Hint>,
    },
}

/// Why a password is easy to guess, in fewer words than zxcvbn's
/// feedback: each is a message of the catalogs (`hint-…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hint {
    Keyboard,
    Repeats,
    Common,
    Sequence,
    Dates,
    Word,
    MoreWords,
    Case,
    Substitution,
}

impl Hint {
    /// Its message in the catalogs.
    pub fn key(self) -> &'static str {
        match self {
            Hint::Keyboard => "hint-keyboard",
            Hint::Repeats => "hint-repeats",
            Hint::Common => "hint-common",
            Hint::Sequence => "hint-sequence",
            Hint::Dates => "hint-dates",
            Hint::Word => "hint-word",
            Hint::MoreWords => "hint-more-words",
            Hint::Case => "hint-case",
            Hint::Substitution => "hint-substitution",
        }
    }

    fn of_warning(w: zxcvbn::feedback::Warning) -> Hint {
        use zxcvbn::feedback::Warning as W;
        match w {
            W::StraightRowsOfKeysAreEasyToGuess | W::ShortKeyboardPatternsAreEasyToGuess => {
                Hint::Keyboard
            }
            W::RepeatsLikeAaaAreEasyToGuess | W::RepeatsLikeAbcAbcAreOnlySlightlyHarderToGuess => {
                Hint::Repeats
            }
            W::ThisIsATop10Password
            | W::ThisIsATop100Password
            | W::ThisIsACommonPassword
            | W::ThisIsSimilarToACommonlyUsedPassword => Hint::Common,
            W::SequencesLikeAbcAreEasyToGuess => Hint::Sequence,
            W::RecentYearsAreEasyToGuess | W::DatesAreOftenEasyToGuess => Hint::Dates,
            W::AWordByItselfIsEasyToGuess
            | W::NamesAndSurnamesByThemselvesAreEasyToGuess
            | W::CommonNamesAndSurnamesAreEasyToGuess => Hint::Word,
        }
    }

    fn of_suggestion(s: zxcvbn::feedback::Suggestion) -> Hint {
        use zxcvbn::feedback::Suggestion as S;
        match s {
            S::UseAFewWordsAvoidCommonPhrases
            | S::NoNeedForSymbolsDigitsOrUppercaseLetters
            | S::AddAnotherWordOrTwo => Hint::MoreWords,
            S::CapitalizationDoesntHelpVeryMuch
            | S::AllUppercaseIsAlmostAsEasyToGuessAsAllLowercase => Hint::Case,
            S::ReversedWordsArentMuchHarderToGuess
            | S::PredictableSubstitutionsDontHelpVeryMuch => Hint::Substitution,
            S::UseALongerKeyboardPatternWithMoreTurns => Hint::Keyboard,
            S::AvoidRepeatedWordsAndCharacters => Hint::Repeats,
            S::AvoidSequences => Hint::Sequence,
            S::AvoidRecentYears
            | S::AvoidYearsThatAreAssociatedWithYou
            | S::AvoidDatesAndYearsThatAreAssociatedWithYou => Hint::Dates,
        }
    }
}

impl Rejection {
    /// The catalog message that explains it (`rule-…`), a hint's after it.
    pub fn keys(&self) -> (&'static str, Option<&'static str>) {
        let rule = match self {
            Rejection::Mismatch => "rule-mismatch",
            Rejection::ControlCharacter => "rule-control",
            Rejection::TooShort { .. } => "rule-too-short",
            Rejection::TooLong => "rule-too-long",
            Rejection::Common => "rule-common",
            Rejection::Guessable { .. } => "rule-guessable",
        };
        let hint = match self {
            Rejection::Guessable { hint } => hint.map(Hint::key),
            _ => None,
        };
        (rule, hint)
    }
}

/// For logs: the catalog messages that explain it (their words, in the
/// user's language, are the reset page's to write).
impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.keys() {
            (rule, Some(hint)) => write!(f, "new password refused: {rule} ({hint})"),
            (rule, None) => write!(f, "new password refused: {rule}"),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub min_length: usize,
}

impl Policy {
    /// Checks a new password (already [`normalize`]d); `context` holds the
    /// user's email and name, which a password should not be built from.
    pub fn check(&self, password: &str, confirm: &str, context: &[&str]) -> Result<(), Rejection> {
        if password != confirm {
            return Err(Rejection::Mismatch);
        }
        if password.chars().any(char::is_control) {
            return Err(Rejection::ControlCharacter);
        }
        if password.len() > MAX_BYTES {
            return Err(Rejection::TooLong);
        }
        if password.chars().count() < self.min_length {
            return Err(Rejection::TooShort {
                min: self.min_length,
            });
        }
        let lowered = password.to_lowercase();
        if COMMON.lines().any(|common| common.trim() == lowered) {
            return Err(Rejection::Common);
        }
        // zxcvbn matches its dictionaries, the user's words included, in
        // lower case.
        let mut words: Vec<String> = context.iter().map(|c| c.to_lowercase()).collect();
        let parts: Vec<String> = words
            .iter()
            .flat_map(|c| c.split(['@', '.', ' ', '_', '-', '+']))
            .filter(|p| p.len() >= 3)
            .map(str::to_string)
            .collect();
        words.extend(parts);
        let inputs: Vec<&str> = words.iter().map(String::as_str).collect();
        let prefix: String = password.chars().take(ZXCVBN_PREFIX_CHARS).collect();
        let entropy = zxcvbn::zxcvbn(&prefix, &inputs);
        if entropy.score() < zxcvbn::Score::Three {
            let hint = entropy.feedback().and_then(|f| {
                f.warning()
                    .map(Hint::of_warning)
                    .or_else(|| f.suggestions().first().copied().map(Hint::of_suggestion))
            });
            return Err(Rejection::Guessable { hint });
        }
        Ok(())
    }
}

/// Runs argon2id (m=19456 KiB, t=2, p=1) on `threads` threads of its own,
/// so a burst of submissions waits instead of taking 19 MiB each at once,
/// and lets at most `queue` more wait, so a flood is told to come back
/// instead of piling up. Each thread hashes in one 19 MiB buffer it keeps:
/// allocating it per hash (argon2's default) made glibc raise its mmap
/// threshold and keep the freed blocks, 400 MiB resident after 300
/// submissions (seen in `cargo xtask bench`, scenario d).
#[derive(Clone)]
pub struct Hasher {
    jobs: std::sync::mpsc::Sender<Job>,
    admitted: Arc<Semaphore>,
}

/// Work for a hashing thread, given that thread's argon2 memory.
type Job = Box<dyn FnOnce(&mut [Block]) + Send>;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Argon2(String),
    #[error("password hashing stopped")]
    Stopped,
    #[error("too many password hashes waiting")]
    Busy,
}

impl Hasher {
    pub fn new(threads: usize, queue: usize) -> Self {
        let threads = threads.max(1);
        let (jobs, inbox) = std::sync::mpsc::channel::<Job>();
        let inbox = Arc::new(std::sync::Mutex::new(inbox));
        for n in 0..threads {
            let inbox = Arc::clone(&inbox);
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    // Allocated on first use: a service nobody resets a
                    // password on never pays the 19 MiB.
                    let mut memory: Vec<Block> = Vec::new();
                    loop {
                        // The lock is held only while taking the next job.
                        let next = match inbox.lock() {
                            Ok(inbox) => inbox.recv(),
                            Err(_) => return,
                        };
                        match next {
                            Ok(job) => {
                                if memory.is_empty() {
                                    memory =
                                        vec![Block::default(); Params::default().block_count()];
                                }
                                job(&mut memory)
                            }
                            Err(_) => return, // every Hasher is gone
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password hashing thread");
            }
        }
        Hasher {
            jobs,
            admitted: Arc::new(Semaphore::new(threads + queue)),
        }
    }

    /// Runs `work` on a hashing thread; `Busy` when the queue is full.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _admitted = self.admitted.try_acquire().map_err(|_| HashError::Busy)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |memory: &mut [Block]| {
                // A caller that went away (client disconnected) frees its
                // queue place at once; skip its work too.
                if !reply.is_closed() {
                    let _ = reply.send(work(memory));
                }
            }))
            .map_err(|_| HashError::Stopped)?;
        answer.await.map_err(|_| HashError::Stopped)
    }

    /// The PHC string of `password`.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move |memory| hash_in(memory, password.as_bytes()))
            .await?
    }

    pub async fn verify(&self, password: String, phc: String) -> Result<bool, HashError> {
        self.run(move |_| {
            Argon2::default()
                .verify_password(password.as_bytes(), phc.as_str())
                .is_ok()
        })
        .await
    }
}

/// argon2id with the default parameters in `memory`, as a PHC string
/// (what `Argon2::default().hash_password` makes, without its allocation).
fn hash_in(memory: &mut [Block], password: &[u8]) -> Result<String, HashError> {
    let fail = |e: &dyn std::fmt::Display| HashError::Argon2(e.to_string());
    let params = Params::default();
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| fail(&e))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, &salt, &mut out, memory)
        .map_err(|e| fail(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| fail(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| fail(&e))?),
        hash: Some(Output::new(&out).map_err(|e| fail(&e))?),
    };
    Ok(phc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy { min_length: 12 };

    /// The minimum is a length allowed, one less is not.
    #[test]
    fn the_minimum_length_is_the_shortest_allowed() {
        let ctx = ["carol.jones@example.com", "Carol Jones"];
        let twelve = "vQ8#tLw2!pZr";
        assert_eq!(twelve.chars().count(), 12);
        assert_eq!(POLICY.check(twelve, twelve, &ctx), Ok(()));
        let eleven = &twelve[..11];
        assert_eq!(
            POLICY.check(eleven, eleven, &ctx),
            Err(Rejection::TooShort { min: 12 })
        );
        // Characters, not bytes: eleven two-byte characters are too short,
        // twelve are long enough (whatever else is said of them).
        let accented = "éçàüößñøåæœé";
        assert_eq!(accented.chars().count(), 12);
        assert_ne!(
            POLICY.check(accented, accented, &ctx),
            Err(Rejection::TooShort { min: 12 })
        );
        let shorter: String = accented.chars().take(11).collect();
        assert_eq!(
            POLICY.check(&shorter, &shorter, &ctx),
            Err(Rejection::TooShort { min: 12 })
        );
    }

    #[test]
    fn rules() {
        let ctx = ["carol.jones@example.com", "Carol Jones"];
        let ok = "correct horse battery staple";
        assert_eq!(POLICY.check(ok, ok, &ctx), Ok(()));
        assert_eq!(POLICY.check(ok, "other", &ctx), Err(Rejection::Mismatch));
        assert_eq!(
            POLICY.check("Sh0rt!x", "Sh0rt!x", &ctx),
            Err(Rejection::TooShort { min: 12 })
        );
        let long = "x".repeat(MAX_BYTES + 1);
        assert_eq!(POLICY.check(&long, &long, &ctx), Err(Rejection::TooLong));
        let max = "horse staple ".repeat(MAX_BYTES / 13);
        assert_eq!(
            POLICY.check(&max, &max, &ctx),
            Ok(()),
            "long passphrases are fine"
        );
        assert_eq!(
            POLICY.check("password1234", "password1234", &ctx),
            Err(Rejection::Common)
        );
        // Strong on its own (zxcvbn scores it 4), weak given who the user is.
        let own_email = "carol.jones@example.com";
        assert!(matches!(
            POLICY.check(own_email, own_email, &ctx),
            Err(Rejection::Guessable { .. })
        ));
        assert!(matches!(
            POLICY.check("aaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaa", &ctx),
            Err(Rejection::Guessable { .. })
        ));
        assert_eq!(
            POLICY.check("plum trellis\0quasar", "plum trellis\0quasar", &ctx),
            Err(Rejection::ControlCharacter)
        );
        assert_eq!(
            POLICY.check("plum trellis\tquasar", "plum trellis\tquasar", &ctx),
            Err(Rejection::ControlCharacter)
        );
        // NFKC: composed and decomposed forms, and compatibility forms, agree.
        assert_eq!(normalize("cre\u{0300}me"), normalize("cr\u{00e8}me"));
        assert_eq!(normalize("\u{FB01}le"), "file");
        // No composition rules: lowercase words pass when they are strong.
        assert_eq!(
            POLICY.check("plum trellis quasar", "plum trellis quasar", &ctx),
            Ok(())
        );
    }

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let hasher = Hasher::new(2, 0);
        let phc = hasher.hash("plum trellis quasar".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(
            hasher
                .verify("plum trellis quasar".into(), phc.clone())
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify("plum trellis quasaR".into(), phc)
                .await
                .unwrap()
        );
    }

    /// One thread reuses its argon2 memory: every hash must still be right,
    /// and salted differently.
    #[tokio::test]
    async fn reused_memory_gives_correct_distinct_hashes() {
        let hasher = Hasher::new(1, 3);
        let passwords = ["first lantern quasar", "second lantern quasar"];
        let mut seen = Vec::new();
        for password in passwords.iter().chain(passwords.iter()) {
            let phc = hasher.hash(password.to_string()).await.unwrap();
            assert!(
                hasher
                    .verify(password.to_string(), phc.clone())
                    .await
                    .unwrap()
            );
            assert!(!seen.contains(&phc), "salts differ");
            seen.push(phc);
        }
        assert!(
            !hasher
                .verify(passwords[0].into(), seen[1].clone())
                .await
                .unwrap()
        );
    }
}
