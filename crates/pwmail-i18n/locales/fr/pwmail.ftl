# pwmail en français.

## Durées et dates

duration-seconds = { $n ->
    [one] { $n } seconde
   *[other] { $n } secondes
}
duration-minutes = { $n ->
    [one] { $n } minute
   *[other] { $n } minutes
}
duration-hours = { $n ->
    [one] { $n } heure
   *[other] { $n } heures
}
duration-days = { $n ->
    [one] { $n } jour
   *[other] { $n } jours
}
datetime-utc = { $datetime } UTC

## E-mails

greeting = Bonjour,
greeting-named = Bonjour { $name },
email-open-link = Ouvrez ce lien pour choisir votre nouveau mot de passe :
email-button = Définir un nouveau mot de passe
email-paste-link = Ou collez ce lien dans votre navigateur :
email-expiry = Le lien ne fonctionne qu’une fois et expire dans { $expires_in } (le { $expires_at }).
email-questions = Des questions ? Contactez { $support }.

email-link-subject = Définissez votre mot de passe { $product }
email-link-intro = Un administrateur de { $product } nous a demandé de vous envoyer un lien pour définir un nouveau mot de passe pour le compte { $email }.
email-link-current-works = Tant que vous ne l’utilisez pas, votre mot de passe actuel continue de fonctionner.
email-link-ignore = Si vous n’attendiez pas cet e-mail, vous pouvez l’ignorer.

email-reset-subject = Votre mot de passe { $product } a été réinitialisé
email-reset-intro = Un administrateur de { $product } a réinitialisé le mot de passe du compte { $email }. Votre ancien mot de passe ne fonctionne plus et tous les liens de mot de passe précédents ont été annulés.
email-reset-ask-again = S’il expire, demandez à votre administrateur de vous en envoyer un nouveau.

email-changed-subject = Votre mot de passe { $product } a été modifié
email-changed-body = Le mot de passe du compte { $product } { $email } a été modifié le { $changed_at }. Tous les autres liens de mot de passe du compte ont été annulés.
email-changed-not-you = Si ce n’était pas vous, contactez immédiatement votre administrateur.
email-changed-not-you-support = Si ce n’était pas vous, contactez immédiatement votre administrateur ({ $support }).

## La page de réinitialisation

page-form-title = Choisissez un nouveau mot de passe
page-form-account = Pour le compte { $email }.
page-new-password = Nouveau mot de passe
page-confirm-password = Saisissez-le à nouveau
page-rule-length = Au moins { $min } caractères ; les longues phrases de passe de plusieurs mots sont les bienvenues.
page-rule-guessable = Chiffres et symboles ne sont pas nécessaires, mais les mots de passe courants ou faciles à deviner, ou construits à partir de votre nom ou de votre e-mail, sont refusés.
page-submit = Définir le mot de passe
page-form-expiry = Ce lien ne fonctionne qu’une fois et expire le { $expires_at }.
page-busy = Trop de mots de passe sont en cours de modification. Votre lien est toujours valide : veuillez renvoyer le formulaire dans quelques secondes.

page-done-title = Mot de passe modifié
page-done-heading = Votre mot de passe a été modifié
page-done-body = Le nouveau mot de passe de { $email } est défini et fonctionne dès maintenant.
page-done-confirmation = Nous avons aussi envoyé une confirmation à cette adresse. Aucun autre lien de mot de passe du compte ne fonctionne plus.
page-continue = Continuer vers { $host }

problem-ask = Demandez à votre administrateur de vous envoyer un nouvel e-mail de mot de passe.
problem-invalid-title = Ce lien n’est pas valide
problem-invalid-explanation = Le lien a expiré ou il est incomplet. Les liens fonctionnent pendant une durée limitée.
problem-used-title = Ce lien a déjà été utilisé
problem-used-explanation = Le mot de passe a déjà été défini avec ce lien ; chaque lien ne fonctionne qu’une fois.
problem-used-next = Si ce n’était pas vous, contactez immédiatement votre administrateur.
problem-revoked-title = Ce lien a été annulé
problem-revoked-explanation = Un e-mail de mot de passe plus récent a été envoyé, ou le mot de passe a été modifié : ce lien ne fonctionne plus.
problem-revoked-next = Utilisez l’e-mail le plus récent que vous avez reçu.
problem-throttled-title = Trop de tentatives
problem-throttled-explanation = Trop de liens non valides ont été ouverts depuis votre réseau.
problem-throttled-next = Réessayez dans { $wait }.
problem-too-large-title = Ce formulaire est trop volumineux
problem-too-large-explanation = Ce qui a été envoyé est bien plus grand que tout mot de passe accepté par la page.
problem-reopen-form = Rouvrez le lien de votre e-mail et utilisez le formulaire.
problem-timeout-title = Le formulaire n’est pas arrivé à temps
problem-timeout-explanation = La connexion était trop lente ou s’est interrompue pendant l’envoi du formulaire. Votre lien n’a pas été utilisé.
problem-timeout-next = Rouvrez le lien de votre e-mail et renvoyez le formulaire.
problem-unsupported-title = Ce formulaire n’a pas pu être lu
problem-unsupported-explanation = Le nouveau mot de passe doit être envoyé par le formulaire de cette page.
problem-method-title = Cette page ne peut pas être utilisée ainsi
problem-method-explanation = La page affiche un formulaire et prend le nouveau mot de passe dans ce formulaire.
problem-method-next = Ouvrez le lien de votre e-mail dans un navigateur web.
problem-unavailable-title = Veuillez réessayer dans un instant
problem-unavailable-explanation = Le service ne peut pas joindre sa base de données pour le moment. Votre lien n’a pas été utilisé.
problem-unavailable-next = Rechargez cette page dans { $wait }.
problem-internal-title = Une erreur s’est produite
problem-internal-explanation = Le mot de passe n’a pas pu être défini à cause d’une erreur de notre côté.
problem-internal-next = Réessayez plus tard.

## Règles de mot de passe

rule-mismatch = Les deux mots de passe ne sont pas identiques.
rule-control = Le mot de passe contient un caractère de contrôle (comme une tabulation ou un saut de ligne) ; utilisez des lettres, des chiffres, des espaces et des symboles.
rule-too-short = Le mot de passe est trop court : utilisez au moins { $min } caractères.
rule-too-long = Le mot de passe est trop long : { $max } octets au plus.
rule-common = Ce mot de passe fait partie des plus courants. Choisissez-en un autre.
rule-guessable = Ce mot de passe serait facile à deviner.
hint-keyboard = Les motifs de clavier, comme des rangées de touches, sont faciles à deviner.
hint-repeats = Les caractères ou mots répétés sont faciles à deviner.
hint-common = Il ressemble trop à un mot de passe couramment utilisé.
hint-sequence = Les suites comme abc ou 6543 sont faciles à deviner.
hint-dates = Les dates et les années sont faciles à deviner.
hint-word = Un seul mot ou un nom seul est facile à deviner.
hint-more-words = Ajoutez un ou deux mots ; les mots peu courants sont préférables.
hint-case = Les majuscules n’aident pas beaucoup.
hint-substitution = Les mots inversés et les substitutions comme @ pour a n’aident pas beaucoup.
