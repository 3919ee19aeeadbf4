# pwmail auf Deutsch.

## Dauer und Datum

duration-seconds = { $n ->
    [one] { $n } Sekunde
   *[other] { $n } Sekunden
}
duration-minutes = { $n ->
    [one] { $n } Minute
   *[other] { $n } Minuten
}
duration-hours = { $n ->
    [one] { $n } Stunde
   *[other] { $n } Stunden
}
duration-days = { $n ->
    [one] { $n } Tag
   *[other] { $n } Tagen
}
datetime-utc = { $datetime } UTC

## E-Mails

greeting = Hallo,
greeting-named = Hallo { $name },
email-open-link = Öffnen Sie diesen Link, um Ihr neues Passwort zu wählen:
email-button = Neues Passwort festlegen
email-paste-link = Oder fügen Sie diesen Link in Ihren Browser ein:
email-expiry = Der Link funktioniert einmal und läuft in { $expires_in } ab (am { $expires_at }).
email-questions = Fragen? Wenden Sie sich an { $support }.

email-link-subject = Legen Sie Ihr Passwort für { $product } fest
email-link-intro = Ein Administrator von { $product } hat uns gebeten, Ihnen einen Link zu senden, mit dem Sie ein neues Passwort für das Konto { $email } festlegen können.
email-link-current-works = Bis Sie ihn verwenden, funktioniert Ihr bisheriges Passwort weiter.
email-link-ignore = Wenn Sie diese E-Mail nicht erwartet haben, können Sie sie ignorieren.

email-reset-subject = Ihr Passwort für { $product } wurde zurückgesetzt
email-reset-intro = Ein Administrator von { $product } hat das Passwort des Kontos { $email } zurückgesetzt. Ihr bisheriges Passwort funktioniert nicht mehr, und alle früheren Passwort-Links wurden ungültig gemacht.
email-reset-ask-again = Wenn er abläuft, bitten Sie Ihren Administrator, einen neuen zu senden.

email-changed-subject = Ihr Passwort für { $product } wurde geändert
email-changed-body = Das Passwort des { $product }-Kontos { $email } wurde am { $changed_at } geändert. Alle anderen Passwort-Links des Kontos wurden ungültig gemacht.
email-changed-not-you = Wenn Sie das nicht waren, wenden Sie sich sofort an Ihren Administrator.
email-changed-not-you-support = Wenn Sie das nicht waren, wenden Sie sich sofort an Ihren Administrator ({ $support }).

## Die Seite zum Zurücksetzen

page-form-title = Neues Passwort wählen
page-form-account = Für das Konto { $email }.
page-new-password = Neues Passwort
page-confirm-password = Noch einmal eingeben
page-rule-length = Mindestens { $min } Zeichen; lange Passphrasen aus mehreren Wörtern sind willkommen.
page-rule-guessable = Ziffern oder Sonderzeichen sind nicht nötig, aber häufige oder leicht zu erratende Passwörter und solche, die aus Ihrem Namen oder Ihrer E-Mail-Adresse gebildet sind, werden abgelehnt.
page-submit = Passwort festlegen
page-form-expiry = Dieser Link funktioniert einmal und läuft am { $expires_at } ab.
page-busy = Gerade werden zu viele Passwörter geändert. Ihr Link ist weiterhin gültig: Bitte senden Sie das Formular in einigen Sekunden erneut ab.

page-done-title = Passwort geändert
page-done-heading = Ihr Passwort wurde geändert
page-done-body = Das neue Passwort für { $email } ist gesetzt und gilt ab sofort.
page-done-confirmation = Wir haben außerdem eine Bestätigung an diese Adresse gesendet. Alle anderen Passwort-Links des Kontos funktionieren nicht mehr.
page-continue = Weiter zu { $host }

problem-ask = Bitten Sie Ihren Administrator, Ihnen eine neue Passwort-E-Mail zu senden.
problem-invalid-title = Dieser Link ist ungültig
problem-invalid-explanation = Der Link ist abgelaufen oder unvollständig. Links funktionieren nur für begrenzte Zeit.
problem-used-title = Dieser Link wurde bereits verwendet
problem-used-explanation = Mit diesem Link wurde bereits ein Passwort festgelegt; jeder Link funktioniert nur einmal.
problem-used-next = Wenn Sie das nicht waren, wenden Sie sich sofort an Ihren Administrator.
problem-revoked-title = Dieser Link wurde ungültig gemacht
problem-revoked-explanation = Es wurde eine neuere Passwort-E-Mail gesendet oder das Passwort wurde geändert, daher funktioniert dieser Link nicht mehr.
problem-revoked-next = Verwenden Sie die neueste E-Mail, die Sie erhalten haben.
problem-throttled-title = Zu viele Versuche
problem-throttled-explanation = Aus Ihrem Netzwerk wurden zu viele ungültige Links geöffnet.
problem-throttled-next = Versuchen Sie es in { $wait } erneut.
problem-too-large-title = Dieses Formular ist zu groß
problem-too-large-explanation = Was gesendet wurde, ist weit größer als jedes Passwort, das die Seite annimmt.
problem-reopen-form = Öffnen Sie den Link aus Ihrer E-Mail erneut und verwenden Sie das Formular.
problem-timeout-title = Das Formular kam nicht rechtzeitig an
problem-timeout-explanation = Die Verbindung war zu langsam oder brach ab, während das Formular gesendet wurde. Ihr Link wurde nicht verwendet.
problem-timeout-next = Öffnen Sie den Link aus Ihrer E-Mail erneut und senden Sie das Formular noch einmal.
problem-unsupported-title = Dieses Formular konnte nicht gelesen werden
problem-unsupported-explanation = Das neue Passwort muss über das Formular auf dieser Seite gesendet werden.
problem-method-title = Diese Seite kann so nicht verwendet werden
problem-method-explanation = Die Seite zeigt ein Formular und nimmt das neue Passwort aus diesem Formular entgegen.
problem-method-next = Öffnen Sie den Link aus Ihrer E-Mail in einem Webbrowser.
problem-unavailable-title = Bitte versuchen Sie es gleich noch einmal
problem-unavailable-explanation = Der Dienst erreicht seine Datenbank im Moment nicht. Ihr Link wurde nicht verwendet.
problem-unavailable-next = Laden Sie diese Seite in { $wait } neu.
problem-internal-title = Etwas ist schiefgelaufen
problem-internal-explanation = Das Passwort konnte wegen eines Fehlers auf unserer Seite nicht festgelegt werden.
problem-internal-next = Versuchen Sie es später erneut.

## Passwortregeln

rule-mismatch = Die beiden Passwörter stimmen nicht überein.
rule-control = Das Passwort enthält ein Steuerzeichen (etwa einen Tabulator oder Zeilenumbruch); verwenden Sie Buchstaben, Ziffern, Leerzeichen und Sonderzeichen.
rule-too-short = Das Passwort ist zu kurz: Verwenden Sie mindestens { $min } Zeichen.
rule-too-long = Das Passwort ist zu lang: höchstens { $max } Bytes.
rule-common = Dieses Passwort gehört zu den häufigsten. Wählen Sie ein anderes.
rule-guessable = Dieses Passwort wäre leicht zu erraten.
hint-keyboard = Tastaturmuster wie Tastenreihen sind leicht zu erraten.
hint-repeats = Wiederholte Zeichen oder Wörter sind leicht zu erraten.
hint-common = Es ähnelt zu sehr einem häufig verwendeten Passwort.
hint-sequence = Folgen wie abc oder 6543 sind leicht zu erraten.
hint-dates = Daten und Jahreszahlen sind leicht zu erraten.
hint-word = Ein einzelnes Wort oder ein Name allein ist leicht zu erraten.
hint-more-words = Fügen Sie ein oder zwei weitere Wörter hinzu; ungewöhnliche Wörter sind besser.
hint-case = Großbuchstaben helfen wenig.
hint-substitution = Rückwärts geschriebene Wörter und Ersetzungen wie @ für a helfen wenig.
