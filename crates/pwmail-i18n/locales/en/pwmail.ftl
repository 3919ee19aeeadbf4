# pwmail's messages in English: the reference catalog. Every other catalog
# has every key of this one (a test checks); a key missing at run time is
# taken from here.

## Durations and dates

duration-seconds = { $n ->
    [one] { $n } second
   *[other] { $n } seconds
}
duration-minutes = { $n ->
    [one] { $n } minute
   *[other] { $n } minutes
}
duration-hours = { $n ->
    [one] { $n } hour
   *[other] { $n } hours
}
duration-days = { $n ->
    [one] { $n } day
   *[other] { $n } days
}
# $datetime: a date and time, written for the locale by ICU4X.
datetime-utc = { $datetime } UTC

## Emails

greeting = Hello,
greeting-named = Hello { $name },
email-open-link = Open this link to choose your new password:
email-button = Set a new password
email-paste-link = Or paste this link into your browser:
email-expiry = The link works once and expires in { $expires_in } (at { $expires_at }).
email-questions = Questions? Contact { $support }.

email-link-subject = Set your { $product } password
email-link-intro = An administrator of { $product } asked us to send you a link to set a new password for the account { $email }.
email-link-current-works = Until you use it, your current password keeps working.
email-link-ignore = If you did not expect this email, you can ignore it.

email-reset-subject = Your { $product } password was reset
email-reset-intro = An administrator of { $product } reset the password of the account { $email }. Your previous password no longer works, and any earlier password links have been cancelled.
email-reset-ask-again = If it expires, ask your administrator to send a new one.

email-changed-subject = Your { $product } password was changed
email-changed-body = The password of the { $product } account { $email } was changed at { $changed_at }. Every other password link of the account has been cancelled.
email-changed-not-you = If you did not do this, contact your administrator at once.
email-changed-not-you-support = If you did not do this, contact your administrator at once ({ $support }).

## The reset page

page-form-title = Choose a new password
page-form-account = For the account { $email }.
page-new-password = New password
page-confirm-password = Type it again
page-rule-length = At least { $min } characters; long passphrases of several words are welcome.
page-rule-guessable = No need for digits or symbols, but common or easily guessed passwords, or ones built from your name or email, are refused.
page-submit = Set password
page-form-expiry = This link works once and expires at { $expires_at }.
page-busy = Too many passwords are being changed right now. Your link is still valid: please submit again in a few seconds.

page-done-title = Password changed
page-done-heading = Your password was changed
page-done-body = The new password of { $email } is set and works from now on.
page-done-confirmation = We also sent a confirmation to that address. Every other password link of the account no longer works.
page-continue = Continue to { $host }

problem-ask = Ask your administrator to send you a new password email.
problem-invalid-title = This link is not valid
problem-invalid-explanation = The link has expired, or it is incomplete. Links work for a limited time.
problem-used-title = This link was already used
problem-used-explanation = The password was set with this link before; each link works once.
problem-used-next = If that was not you, contact your administrator at once.
problem-revoked-title = This link was cancelled
problem-revoked-explanation = A newer password email was sent, or the password was changed, so this link no longer works.
problem-revoked-next = Use the newest email you received.
problem-throttled-title = Too many attempts
problem-throttled-explanation = Too many invalid links were opened from your network.
problem-throttled-next = Try again in { $wait }.
problem-too-large-title = This form is too large
problem-too-large-explanation = What was sent is far larger than any password the page accepts.
problem-reopen-form = Open the link from your email again and use the form.
problem-timeout-title = The form did not arrive in time
problem-timeout-explanation = The connection was too slow or broke off while the form was being sent. Your link has not been used.
problem-timeout-next = Open the link from your email again and send the form once more.
problem-unsupported-title = This form could not be read
problem-unsupported-explanation = The new password must be sent by the form on this page.
problem-method-title = This page cannot be used that way
problem-method-explanation = The page shows a form, and takes the new password from that form.
problem-method-next = Open the link from your email in a web browser.
problem-unavailable-title = Please try again shortly
problem-unavailable-explanation = The service cannot reach its database at the moment. Your link has not been used.
problem-unavailable-next = Reload this page in { $wait }.
problem-internal-title = Something went wrong
problem-internal-explanation = The password could not be set because of an error on our side.
problem-internal-next = Try again later.

## Password rules

rule-mismatch = The two passwords are not the same.
rule-control = The password contains a control character (such as a tab or line break); use letters, digits, spaces and symbols.
rule-too-short = The password is too short: use at least { $min } characters.
rule-too-long = The password is too long: at most { $max } bytes.
rule-common = This password is one of the most common ones. Choose another.
rule-guessable = This password would be easy to guess.
hint-keyboard = Keyboard patterns such as rows of keys are easy to guess.
hint-repeats = Repeated characters or words are easy to guess.
hint-common = It is too close to a commonly used password.
hint-sequence = Sequences such as abc or 6543 are easy to guess.
hint-dates = Dates and years are easy to guess.
hint-word = A single word or name by itself is easy to guess.
hint-more-words = Add another word or two; uncommon words are better.
hint-case = Capital letters do not help much.
hint-substitution = Reversed words and substitutions such as @ for a do not help much.
