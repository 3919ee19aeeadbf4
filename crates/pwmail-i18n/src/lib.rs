//! pwmail's languages: the Project Fluent catalogs it ships (`locales/`),
//! which of them a user, a call or a browser gets (negotiated with
//! `fluent-langneg`), and dates and durations written for each (ICU4X for
//! dates, Fluent plurals for durations).
//!
//! One rule decides a link's language, here and nowhere else
//! ([`Catalogs::for_link`]): the call's `locale`, else the user's, else the
//! server's default; each negotiated to the nearest catalog.

pub mod templates;

use std::fmt;
use std::time::Duration;

use fluent_bundle::FluentResource;
use fluent_bundle::concurrent::FluentBundle;
/// A message's arguments, as [`Catalogs::text`] takes them.
pub use fluent_bundle::{FluentArgs, FluentValue};
use fluent_langneg::{NegotiationStrategy, negotiate_languages};
use icu_calendar::{Date, Gregorian};
use icu_datetime::FixedCalendarDateTimeFormatter;
use icu_datetime::fieldsets::YMDT;
use icu_datetime::options::TimePrecision;
use icu_time::{DateTime, Time};
use unic_langid::LanguageIdentifier;

/// The catalogs pwmail ships, English first: it is the reference every
/// other catalog is checked against and the fallback for a missing message.
pub const SHIPPED: [&str; 7] = ["en", "de", "fr", "es", "pt-BR", "ja", "ar"];

const SOURCES: [&str; 7] = [
    include_str!("../locales/en/pwmail.ftl"),
    include_str!("../locales/de/pwmail.ftl"),
    include_str!("../locales/fr/pwmail.ftl"),
    include_str!("../locales/es/pwmail.ftl"),
    include_str!("../locales/pt-BR/pwmail.ftl"),
    include_str!("../locales/ja/pwmail.ftl"),
    include_str!("../locales/ar/pwmail.ftl"),
];

/// Written right to left.
const RTL: [&str; 1] = ["ar"];

/// Longest tag accepted (the API document's `maxLength`).
pub const TAG_MAX: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocaleError {
    #[error("{tag:?} is not a BCP 47 language tag (such as \"de\" or \"pt-BR\")")]
    Malformed { tag: String },
    #[error("pwmail has no catalog for {tag:?}; it ships {}", SHIPPED.join(", "))]
    NoCatalog { tag: String },
}

/// A well-formed BCP 47 language tag, kept in its canonical spelling
/// (`de-at` → `de-AT`). Whether pwmail has a catalog for it is decided
/// when it is used ([`Catalogs::negotiate`]), so a user keeps the tag they
/// were given if a closer catalog ships later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Locale(LanguageIdentifier);

impl Locale {
    pub fn parse(text: &str) -> Result<Locale, LocaleError> {
        let malformed = || LocaleError::Malformed {
            tag: text.chars().take(TAG_MAX).collect(),
        };
        // unic-langid also takes `_` as a separator; BCP 47 does not.
        if text.is_empty() || text.len() > TAG_MAX || text.contains('_') {
            return Err(malformed());
        }
        text.parse::<LanguageIdentifier>()
            .map(Locale)
            .map_err(|_| malformed())
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One of the shipped catalogs ([`SHIPPED`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lang(usize);

impl Lang {
    pub const ENGLISH: Lang = Lang(0);

    pub fn all() -> impl Iterator<Item = Lang> {
        (0..SHIPPED.len()).map(Lang)
    }

    /// The shipped catalog of exactly this tag.
    pub fn by_tag(tag: &str) -> Option<Lang> {
        SHIPPED.iter().position(|t| *t == tag).map(Lang)
    }

    /// Its tag, as `<html lang>` and the `locale` of templates take it.
    pub fn tag(self) -> &'static str {
        SHIPPED[self.0]
    }

    /// `rtl` or `ltr`, for `<html dir>`.
    pub fn dir(self) -> &'static str {
        if RTL.contains(&self.tag()) {
            "rtl"
        } else {
            "ltr"
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

type Dates = FixedCalendarDateTimeFormatter<Gregorian, YMDT>;

/// Every shipped catalog, parsed once at start, with each locale's date
/// formatter, and the server's default.
pub struct Catalogs {
    bundles: Vec<FluentBundle<FluentResource>>,
    dates: Vec<Dates>,
    ids: Vec<LanguageIdentifier>,
    default: Lang,
}

impl fmt::Debug for Catalogs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Catalogs")
            .field("default", &self.default)
            .finish_non_exhaustive()
    }
}

impl Catalogs {
    /// The shipped catalogs with `default` (`--default-locale`), which
    /// must negotiate to one of them: a default nobody can read would be
    /// English under another name.
    pub fn new(default: &Locale) -> Result<Catalogs, LocaleError> {
        let ids: Vec<LanguageIdentifier> = SHIPPED
            .iter()
            .map(|tag| tag.parse().expect("a shipped tag parses"))
            .collect();
        let mut bundles = Vec::with_capacity(SHIPPED.len());
        let mut dates = Vec::with_capacity(SHIPPED.len());
        for (i, source) in SOURCES.iter().enumerate() {
            // The catalogs are compiled in and checked by this crate's
            // tests: a syntax error cannot reach a release.
            let resource = FluentResource::try_new(source.to_string())
                .unwrap_or_else(|(resource, _)| resource);
            let mut bundle = FluentBundle::new_concurrent(vec![ids[i].clone()]);
            // Unicode isolation marks keep an address or a name from
            // reordering the sentence around it; left-to-right text has no
            // need for them, and they would travel into copied text.
            bundle.set_use_isolating(RTL.contains(&SHIPPED[i]));
            // Duplicate keys are a catalog bug the tests catch.
            let _ = bundle.add_resource(resource);
            bundles.push(bundle);
            let locale: icu_locale_core::Locale = SHIPPED[i].parse().expect("a shipped tag parses");
            dates.push(
                Dates::try_new(
                    (&locale).into(),
                    YMDT::medium().with_time_precision(TimePrecision::Minute),
                )
                .expect("ICU4X's compiled data covers every shipped locale"),
            );
        }
        let mut catalogs = Catalogs {
            bundles,
            dates,
            ids,
            default: Lang::ENGLISH,
        };
        catalogs.default = catalogs
            .nearest(default)
            .ok_or_else(|| LocaleError::NoCatalog {
                tag: default.to_string(),
            })?;
        Ok(catalogs)
    }

    pub fn default_lang(&self) -> Lang {
        self.default
    }

    /// The nearest shipped catalog (`de-AT` → `de`, `pt` → `pt-BR`), if any.
    fn nearest(&self, wanted: &Locale) -> Option<Lang> {
        self.best(std::slice::from_ref(&wanted.0))
    }

    fn best(&self, wanted: &[LanguageIdentifier]) -> Option<Lang> {
        let found = negotiate_languages(wanted, &self.ids, None, NegotiationStrategy::Lookup);
        found
            .first()
            .and_then(|id| self.ids.iter().position(|i| i == *id))
            .map(Lang)
    }

    /// The catalog for `wanted`: its nearest, else the default.
    pub fn negotiate(&self, wanted: &Locale) -> Lang {
        self.nearest(wanted).unwrap_or(self.default)
    }

    /// A link's language: the call's `locale`, else the user's, else the
    /// default. A stored tag that does not parse (it was checked when it
    /// was stored) is passed over, not an error: the email still goes.
    pub fn for_link(&self, call: Option<&str>, user: Option<&str>) -> Lang {
        call.or(user)
            .and_then(|tag| Locale::parse(tag).ok())
            .map_or(self.default, |locale| self.negotiate(&locale))
    }

    /// A browser's language, from its `Accept-Language` (in its order of
    /// preference), else the default.
    pub fn accept_language(&self, header: Option<&str>) -> Lang {
        let wanted = header.map(accepted).unwrap_or_default();
        self.best(&wanted).unwrap_or(self.default)
    }

    /// A message of `lang`'s catalog, or of English when that catalog has
    /// none of this key. An unknown key is written as itself, so a
    /// template with a misspelt key shows it instead of failing a send;
    /// templates check their keys at start ([`Catalogs::has`]).
    pub fn text(&self, lang: Lang, key: &str, args: &FluentArgs<'_>) -> String {
        let found = [lang, Lang::ENGLISH].into_iter().find_map(|l| {
            let bundle = &self.bundles[l.0];
            bundle
                .get_message(key)
                .and_then(|m| m.value())
                .map(|pattern| (bundle, pattern))
        });
        match found {
            Some((bundle, pattern)) => {
                let mut errors = Vec::new();
                bundle
                    .format_pattern(pattern, Some(args), &mut errors)
                    .into_owned()
            }
            None => key.to_string(),
        }
    }

    /// Whether the English catalog (so every catalog) has `key`.
    pub fn has(&self, key: &str) -> bool {
        self.bundles[Lang::ENGLISH.0].has_message(key)
    }

    /// A time as `lang` writes it, in UTC ("Dec 7, 2026, 2:05 PM UTC",
    /// "07.12.2026, 14:05 UTC").
    pub fn datetime(&self, lang: Lang, unix_millis: i64) -> String {
        let utc = chrono::DateTime::from_timestamp_millis(unix_millis)
            .unwrap_or_default()
            .naive_utc();
        use chrono::{Datelike, Timelike};
        let date = Date::try_new_gregorian(utc.year(), utc.month() as u8, utc.day() as u8);
        let time = Time::try_new(utc.hour() as u8, utc.minute() as u8, 0, 0);
        let written = match (date, time) {
            (Ok(date), Ok(time)) => self.dates[lang.0]
                .format(&DateTime { date, time })
                .to_string(),
            // Outside ICU's range: the ISO form.
            _ => utc.format("%Y-%m-%d %H:%M").to_string(),
        };
        let mut args = FluentArgs::new();
        args.set("datetime", written);
        self.text(lang, "datetime-utc", &args)
    }

    /// A link's lifetime as `lang` says it: whole days from two days up,
    /// else whole hours, else minutes ("24 hours", "2 days", "90 minutes").
    pub fn duration(&self, lang: Lang, d: Duration) -> String {
        let secs = d.as_secs();
        let (key, n) = if secs.is_multiple_of(86_400) && secs >= 2 * 86_400 {
            ("duration-days", secs / 86_400)
        } else if secs.is_multiple_of(3600) && secs >= 3600 {
            ("duration-hours", secs / 3600)
        } else {
            ("duration-minutes", secs.div_ceil(60))
        };
        let mut args = FluentArgs::new();
        args.set("n", FluentValue::from(n));
        self.text(lang, key, &args)
    }

    /// A wait as `lang` says it, in whole seconds (rounded up), as the
    /// `Retry-After` beside it counts them.
    pub fn seconds(&self, lang: Lang, d: Duration) -> String {
        let mut args = FluentArgs::new();
        let n = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        args.set("n", FluentValue::from(n));
        self.text(lang, "duration-seconds", &args)
    }
}

/// An `Accept-Language` value's tags, most wanted first (RFC 9110
/// §12.5.4: by `q`, ties in the order given; `q=0` means "not this"); `*`
/// and tags that do not parse are left out.
fn accepted(header: &str) -> Vec<LanguageIdentifier> {
    let mut tags: Vec<(u16, LanguageIdentifier)> = header
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let tag = parts.next()?.trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .map(|q| q.trim().parse::<f32>().unwrap_or(0.0))
                .next()
                .unwrap_or(1.0);
            let weight = (q.clamp(0.0, 1.0) * 1000.0) as u16;
            let id = Locale::parse(tag).ok()?.0;
            (weight > 0).then_some((weight, id))
        })
        .collect();
    tags.sort_by_key(|t| std::cmp::Reverse(t.0));
    tags.into_iter().map(|(_, id)| id).collect()
}

/// The message identifiers a catalog's source defines, in order.
#[cfg(test)]
fn message_keys(source: &str) -> Vec<String> {
    let resource = FluentResource::try_new(source.to_string()).unwrap_or_else(|(r, _)| r);
    resource
        .entries()
        .filter_map(|entry| match entry {
            fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_string()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogs() -> Catalogs {
        Catalogs::new(&Locale::parse("en").unwrap()).unwrap()
    }

    /// Every variable any message uses, with a value.
    fn sample_args() -> FluentArgs<'static> {
        let mut args = FluentArgs::new();
        for (name, value) in [
            ("datetime", "2026-12-07 14:05"),
            ("name", "Ada"),
            ("expires_in", "24 hours"),
            ("expires_at", "2026-12-08 14:05 UTC"),
            ("support", "help@example.com"),
            ("product", "Acme"),
            ("email", "ada@example.com"),
            ("changed_at", "2026-12-07 14:05 UTC"),
            ("host", "app.example.com"),
            ("wait", "30 seconds"),
        ] {
            args.set(name, value);
        }
        for (name, value) in [("n", 3), ("min", 12), ("max", 1024)] {
            args.set(name, FluentValue::from(value));
        }
        args
    }

    #[test]
    fn every_catalog_parses_and_has_every_key_and_each_renders_without_error() {
        let c = catalogs();
        let reference = message_keys(SOURCES[0]);
        assert!(reference.len() > 70, "{}", reference.len());
        for (i, source) in SOURCES.iter().enumerate() {
            let tag = SHIPPED[i];
            if let Err((_, errors)) = FluentResource::try_new(source.to_string()) {
                panic!("{tag}: syntax errors {errors:?}");
            }
            let keys = message_keys(source);
            let missing: Vec<&String> = reference.iter().filter(|k| !keys.contains(k)).collect();
            let extra: Vec<&String> = keys.iter().filter(|k| !reference.contains(k)).collect();
            assert!(missing.is_empty(), "{tag} lacks {missing:?}");
            assert!(
                extra.is_empty(),
                "{tag} has keys English has not: {extra:?}"
            );
            let mut seen = std::collections::HashSet::new();
            for k in &keys {
                assert!(seen.insert(k), "{tag}: {k} twice");
            }
            let bundle = &c.bundles[i];
            for key in &reference {
                let pattern = bundle.get_message(key).unwrap().value().unwrap();
                for n in [0, 1, 2, 3, 11, 100] {
                    let mut args = sample_args();
                    args.set("n", FluentValue::from(n));
                    let mut errors = Vec::new();
                    let text = bundle.format_pattern(pattern, Some(&args), &mut errors);
                    assert!(errors.is_empty(), "{tag} {key}: {errors:?}");
                    assert!(!text.trim().is_empty(), "{tag} {key}");
                }
            }
        }
    }

    #[test]
    fn a_key_missing_from_a_catalog_falls_back_to_english() {
        let mut c = catalogs();
        let de = Lang::by_tag("de").unwrap();
        // A German bundle without the key.
        let mut bundle = FluentBundle::new_concurrent(vec!["de".parse().unwrap()]);
        bundle
            .add_resource(FluentResource::try_new("greeting = Hallo,\n".into()).unwrap())
            .unwrap();
        c.bundles[de.0] = bundle;
        let args = sample_args();
        assert_eq!(c.text(de, "greeting", &args), "Hallo,");
        assert_eq!(
            c.text(de, "page-submit", &args),
            "Set password",
            "from English"
        );
        assert_eq!(c.text(de, "no-such-key", &args), "no-such-key");
    }

    #[test]
    fn tags_negotiate_to_the_nearest_catalog() {
        let c = catalogs();
        let nearest = |tag: &str| c.negotiate(&Locale::parse(tag).unwrap()).tag();
        assert_eq!(nearest("de-AT"), "de");
        assert_eq!(nearest("de"), "de");
        assert_eq!(nearest("pt-BR"), "pt-BR");
        assert_eq!(nearest("pt"), "pt-BR");
        assert_eq!(nearest("pt-PT"), "pt-BR");
        assert_eq!(nearest("fr-CA"), "fr");
        assert_eq!(nearest("ar-EG"), "ar");
        assert_eq!(nearest("ja-JP"), "ja");
        assert_eq!(nearest("it"), "en", "no catalog: the default");
        assert_eq!(nearest("en-GB"), "en");

        let german = Catalogs::new(&Locale::parse("de-CH").unwrap()).unwrap();
        assert_eq!(german.default_lang().tag(), "de");
        assert_eq!(german.negotiate(&Locale::parse("it").unwrap()).tag(), "de");
        assert_eq!(
            Catalogs::new(&Locale::parse("it").unwrap())
                .unwrap_err()
                .to_string(),
            "pwmail has no catalog for \"it\"; it ships en, de, fr, es, pt-BR, ja, ar"
        );
    }

    #[test]
    fn malformed_tags_are_refused_and_good_ones_kept_canonical() {
        for bad in [
            "",
            "de_AT",
            "x",
            "123",
            "german!",
            "de--AT",
            &"a".repeat(65),
        ] {
            assert!(
                matches!(Locale::parse(bad), Err(LocaleError::Malformed { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(Locale::parse("de-at").unwrap().to_string(), "de-AT");
        assert_eq!(Locale::parse("PT-br").unwrap().to_string(), "pt-BR");
        assert_eq!(Locale::parse("it").unwrap().to_string(), "it");
    }

    #[test]
    fn a_link_takes_the_calls_locale_else_the_users_else_the_default() {
        let c = catalogs();
        assert_eq!(c.for_link(Some("fr"), Some("de")).tag(), "fr");
        assert_eq!(c.for_link(None, Some("de-AT")).tag(), "de");
        assert_eq!(c.for_link(None, None).tag(), "en");
        assert_eq!(c.for_link(None, Some("it")).tag(), "en");
    }

    #[test]
    fn accept_language_is_followed_in_its_order() {
        let c = catalogs();
        assert_eq!(
            c.accept_language(Some("fr-CH, fr;q=0.9, en;q=0.8")).tag(),
            "fr"
        );
        assert_eq!(c.accept_language(Some("it, de;q=0.5")).tag(), "de");
        assert_eq!(c.accept_language(Some("en;q=0.5, ja")).tag(), "ja");
        assert_eq!(c.accept_language(Some("it")).tag(), "en");
        assert_eq!(c.accept_language(Some("*")).tag(), "en");
        assert_eq!(c.accept_language(Some(";;;garbage")).tag(), "en");
        assert_eq!(c.accept_language(Some("de;q=0, fr;q=0.1")).tag(), "fr");
        assert_eq!(c.accept_language(None).tag(), "en");
    }

    #[test]
    fn dates_and_lifetimes_are_written_for_each_locale() {
        let c = catalogs();
        // 2026-12-07 14:05 UTC
        let t = 1_796_652_300_000;
        let lang = |tag| Lang::by_tag(tag).unwrap();
        assert_eq!(c.datetime(lang("en"), t), "Dec 7, 2026, 2:05\u{202f}PM UTC");
        assert_eq!(c.datetime(lang("de"), t), "07.12.2026, 14:05 UTC");
        assert_eq!(c.datetime(lang("ja"), t), "2026/12/07 14:05（UTC）");
        assert!(c.datetime(lang("fr"), t).starts_with("7 déc. 2026"));
        assert_eq!(
            c.duration(lang("en"), Duration::from_secs(86_400)),
            "24 hours"
        );
        assert_eq!(c.duration(lang("en"), Duration::from_secs(3600)), "1 hour");
        assert_eq!(
            c.duration(lang("en"), Duration::from_secs(172_800)),
            "2 days"
        );
        assert_eq!(
            c.duration(lang("en"), Duration::from_secs(5400)),
            "90 minutes"
        );
        assert_eq!(
            c.duration(lang("de"), Duration::from_secs(86_400)),
            "24 Stunden"
        );
        assert_eq!(
            c.duration(lang("fr"), Duration::from_secs(300)),
            "5 minutes"
        );
        assert_eq!(c.duration(lang("ja"), Duration::from_secs(7200)), "2時間");
        // Arabic has six plural forms; two hours is its dual (genitive: every
        // duration follows "after").
        assert_eq!(c.duration(lang("ar"), Duration::from_secs(7200)), "ساعتين");
        assert_eq!(c.seconds(lang("en"), Duration::from_secs(1)), "1 second");
        assert_eq!(
            c.seconds(lang("en"), Duration::from_millis(200_500)),
            "201 seconds"
        );
        assert_eq!(
            c.seconds(lang("de"), Duration::from_secs(30)),
            "30 Sekunden"
        );
        assert_eq!(c.seconds(lang("ja"), Duration::from_secs(5)), "5秒");
        assert_eq!(
            c.duration(lang("ar"), Duration::from_secs(5 * 3600)),
            "\u{2068}5\u{2069} ساعات"
        );
    }

    #[test]
    fn only_arabic_is_right_to_left() {
        for lang in Lang::all() {
            assert_eq!(lang.dir() == "rtl", lang.tag() == "ar", "{lang}");
        }
    }
}
