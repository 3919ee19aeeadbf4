# pwmail em português do Brasil.

## Durações e datas

duration-seconds = { $n ->
    [one] { $n } segundo
   *[other] { $n } segundos
}
duration-minutes = { $n ->
    [one] { $n } minuto
   *[other] { $n } minutos
}
duration-hours = { $n ->
    [one] { $n } hora
   *[other] { $n } horas
}
duration-days = { $n ->
    [one] { $n } dia
   *[other] { $n } dias
}
datetime-utc = { $datetime } UTC

## E-mails

greeting = Olá,
greeting-named = Olá, { $name },
email-open-link = Abra este link para escolher sua nova senha:
email-button = Definir uma nova senha
email-paste-link = Ou cole este link no seu navegador:
email-expiry = O link funciona uma única vez e expira em { $expires_in } (em { $expires_at }).
email-questions = Dúvidas? Fale com { $support }.

email-link-subject = Defina sua senha do { $product }
email-link-intro = Um administrador do { $product } pediu que enviássemos a você um link para definir uma nova senha para a conta { $email }.
email-link-current-works = Até você usá-lo, sua senha atual continua funcionando.
email-link-ignore = Se você não esperava este e-mail, pode ignorá-lo.

email-reset-subject = Sua senha do { $product } foi redefinida
email-reset-intro = Um administrador do { $product } redefiniu a senha da conta { $email }. Sua senha anterior não funciona mais, e todos os links de senha anteriores foram cancelados.
email-reset-ask-again = Se ele expirar, peça ao seu administrador que envie um novo.

email-changed-subject = Sua senha do { $product } foi alterada
email-changed-body = A senha da conta { $email } do { $product } foi alterada em { $changed_at }. Todos os outros links de senha da conta foram cancelados.
email-changed-not-you = Se não foi você, entre em contato com seu administrador imediatamente.
email-changed-not-you-support = Se não foi você, entre em contato com seu administrador imediatamente ({ $support }).

## A página de redefinição

page-form-title = Escolha uma nova senha
page-form-account = Para a conta { $email }.
page-new-password = Nova senha
page-confirm-password = Digite-a novamente
page-rule-length = Pelo menos { $min } caracteres; frases-senha longas, de várias palavras, são bem-vindas.
page-rule-guessable = Não é preciso usar números ou símbolos, mas senhas comuns ou fáceis de adivinhar, ou formadas a partir do seu nome ou e-mail, são recusadas.
page-submit = Definir senha
page-form-expiry = Este link funciona uma única vez e expira em { $expires_at }.
page-busy = Muitas senhas estão sendo alteradas agora. Seu link continua válido: envie o formulário novamente em alguns segundos.

page-done-title = Senha alterada
page-done-heading = Sua senha foi alterada
page-done-body = A nova senha de { $email } está definida e funciona a partir de agora.
page-done-confirmation = Também enviamos uma confirmação para esse endereço. Nenhum outro link de senha da conta funciona mais.
page-continue = Continuar para { $host }

problem-ask = Peça ao seu administrador que envie um novo e-mail de senha.
problem-invalid-title = Este link não é válido
problem-invalid-explanation = O link expirou ou está incompleto. Os links funcionam por tempo limitado.
problem-used-title = Este link já foi usado
problem-used-explanation = A senha já foi definida com este link; cada link funciona uma única vez.
problem-used-next = Se não foi você, entre em contato com seu administrador imediatamente.
problem-revoked-title = Este link foi cancelado
problem-revoked-explanation = Um e-mail de senha mais recente foi enviado, ou a senha foi alterada, então este link não funciona mais.
problem-revoked-next = Use o e-mail mais recente que você recebeu.
problem-throttled-title = Tentativas demais
problem-throttled-explanation = Links inválidos demais foram abertos a partir da sua rede.
problem-throttled-next = Tente novamente em { $wait }.
problem-too-large-title = Este formulário é grande demais
problem-too-large-explanation = O que foi enviado é muito maior do que qualquer senha aceita pela página.
problem-reopen-form = Abra novamente o link do seu e-mail e use o formulário.
problem-timeout-title = O formulário não chegou a tempo
problem-timeout-explanation = A conexão estava lenta demais ou caiu enquanto o formulário era enviado. Seu link não foi usado.
problem-timeout-next = Abra novamente o link do seu e-mail e envie o formulário mais uma vez.
problem-unsupported-title = Não foi possível ler este formulário
problem-unsupported-explanation = A nova senha deve ser enviada pelo formulário desta página.
problem-method-title = Esta página não pode ser usada assim
problem-method-explanation = A página mostra um formulário e recebe a nova senha por esse formulário.
problem-method-next = Abra o link do seu e-mail em um navegador.
problem-unavailable-title = Tente novamente em instantes
problem-unavailable-explanation = O serviço não consegue acessar seu banco de dados no momento. Seu link não foi usado.
problem-unavailable-next = Recarregue esta página em { $wait }.
problem-internal-title = Algo deu errado
problem-internal-explanation = Não foi possível definir a senha por causa de um erro do nosso lado.
problem-internal-next = Tente novamente mais tarde.

## Regras de senha

rule-mismatch = As duas senhas não são iguais.
rule-control = A senha contém um caractere de controle (como uma tabulação ou quebra de linha); use letras, números, espaços e símbolos.
rule-too-short = A senha é curta demais: use pelo menos { $min } caracteres.
rule-too-long = A senha é longa demais: no máximo { $max } bytes.
rule-common = Esta senha é uma das mais comuns. Escolha outra.
rule-guessable = Esta senha seria fácil de adivinhar.
hint-keyboard = Padrões de teclado, como fileiras de teclas, são fáceis de adivinhar.
hint-repeats = Caracteres ou palavras repetidos são fáceis de adivinhar.
hint-common = Ela é parecida demais com uma senha muito usada.
hint-sequence = Sequências como abc ou 6543 são fáceis de adivinhar.
hint-dates = Datas e anos são fáceis de adivinhar.
hint-word = Uma única palavra ou um nome sozinho é fácil de adivinhar.
hint-more-words = Acrescente mais uma ou duas palavras; palavras incomuns são melhores.
hint-case = Letras maiúsculas não ajudam muito.
hint-substitution = Palavras invertidas e substituições como @ no lugar de a não ajudam muito.
