# pwmail en español.

## Duraciones y fechas

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
    [one] { $n } día
   *[other] { $n } días
}
datetime-utc = { $datetime } UTC

## Correos

greeting = Hola:
greeting-named = Hola, { $name }:
email-open-link = Abra este enlace para elegir su nueva contraseña:
email-button = Establecer una nueva contraseña
email-paste-link = O pegue este enlace en su navegador:
email-expiry = El enlace funciona una sola vez y caduca en { $expires_in } (el { $expires_at }).
email-questions = ¿Preguntas? Escriba a { $support }.

email-link-subject = Establezca su contraseña de { $product }
email-link-intro = Un administrador de { $product } nos pidió que le enviáramos un enlace para establecer una nueva contraseña para la cuenta { $email }.
email-link-current-works = Hasta que lo use, su contraseña actual sigue funcionando.
email-link-ignore = Si no esperaba este correo, puede ignorarlo.

email-reset-subject = Se restableció su contraseña de { $product }
email-reset-intro = Un administrador de { $product } restableció la contraseña de la cuenta { $email }. Su contraseña anterior ya no funciona y todos los enlaces de contraseña anteriores se han cancelado.
email-reset-ask-again = Si caduca, pida a su administrador que le envíe uno nuevo.

email-changed-subject = Se cambió su contraseña de { $product }
email-changed-body = La contraseña de la cuenta de { $product } { $email } se cambió el { $changed_at }. Todos los demás enlaces de contraseña de la cuenta se han cancelado.
email-changed-not-you = Si no fue usted, contacte de inmediato con su administrador.
email-changed-not-you-support = Si no fue usted, contacte de inmediato con su administrador ({ $support }).

## La página de restablecimiento

page-form-title = Elija una nueva contraseña
page-form-account = Para la cuenta { $email }.
page-new-password = Nueva contraseña
page-confirm-password = Escríbala de nuevo
page-rule-length = Al menos { $min } caracteres; las frases de contraseña largas de varias palabras son bienvenidas.
page-rule-guessable = No hacen falta números ni símbolos, pero se rechazan las contraseñas comunes o fáciles de adivinar, o las formadas a partir de su nombre o correo.
page-submit = Establecer contraseña
page-form-expiry = Este enlace funciona una sola vez y caduca el { $expires_at }.
page-busy = Ahora mismo se están cambiando demasiadas contraseñas. Su enlace sigue siendo válido: envíe el formulario de nuevo dentro de unos segundos.

page-done-title = Contraseña cambiada
page-done-heading = Se cambió su contraseña
page-done-body = La nueva contraseña de { $email } está establecida y funciona desde ahora.
page-done-confirmation = También enviamos una confirmación a esa dirección. Ningún otro enlace de contraseña de la cuenta funciona ya.
page-continue = Continuar a { $host }

problem-ask = Pida a su administrador que le envíe un nuevo correo de contraseña.
problem-invalid-title = Este enlace no es válido
problem-invalid-explanation = El enlace ha caducado o está incompleto. Los enlaces funcionan durante un tiempo limitado.
problem-used-title = Este enlace ya se usó
problem-used-explanation = La contraseña ya se estableció con este enlace; cada enlace funciona una sola vez.
problem-used-next = Si no fue usted, contacte de inmediato con su administrador.
problem-revoked-title = Este enlace se canceló
problem-revoked-explanation = Se envió un correo de contraseña más reciente o se cambió la contraseña, así que este enlace ya no funciona.
problem-revoked-next = Use el correo más reciente que haya recibido.
problem-throttled-title = Demasiados intentos
problem-throttled-explanation = Se abrieron demasiados enlaces no válidos desde su red.
problem-throttled-next = Vuelva a intentarlo en { $wait }.
problem-too-large-title = Este formulario es demasiado grande
problem-too-large-explanation = Lo enviado es mucho mayor que cualquier contraseña que acepte la página.
problem-reopen-form = Vuelva a abrir el enlace de su correo y use el formulario.
problem-timeout-title = El formulario no llegó a tiempo
problem-timeout-explanation = La conexión era demasiado lenta o se interrumpió mientras se enviaba el formulario. Su enlace no se ha usado.
problem-timeout-next = Vuelva a abrir el enlace de su correo y envíe el formulario otra vez.
problem-unsupported-title = No se pudo leer este formulario
problem-unsupported-explanation = La nueva contraseña debe enviarse con el formulario de esta página.
problem-method-title = Esta página no se puede usar así
problem-method-explanation = La página muestra un formulario y toma la nueva contraseña de ese formulario.
problem-method-next = Abra el enlace de su correo en un navegador web.
problem-unavailable-title = Vuelva a intentarlo en breve
problem-unavailable-explanation = El servicio no puede acceder a su base de datos en este momento. Su enlace no se ha usado.
problem-unavailable-next = Recargue esta página en { $wait }.
problem-internal-title = Algo salió mal
problem-internal-explanation = No se pudo establecer la contraseña por un error de nuestra parte.
problem-internal-next = Vuelva a intentarlo más tarde.

## Reglas de contraseña

rule-mismatch = Las dos contraseñas no coinciden.
rule-control = La contraseña contiene un carácter de control (como un tabulador o un salto de línea); use letras, números, espacios y símbolos.
rule-too-short = La contraseña es demasiado corta: use al menos { $min } caracteres.
rule-too-long = La contraseña es demasiado larga: { $max } bytes como máximo.
rule-common = Esta contraseña es una de las más comunes. Elija otra.
rule-guessable = Esta contraseña sería fácil de adivinar.
hint-keyboard = Los patrones de teclado, como filas de teclas, son fáciles de adivinar.
hint-repeats = Los caracteres o palabras repetidos son fáciles de adivinar.
hint-common = Se parece demasiado a una contraseña de uso común.
hint-sequence = Las secuencias como abc o 6543 son fáciles de adivinar.
hint-dates = Las fechas y los años son fáciles de adivinar.
hint-word = Una sola palabra o un nombre por sí solo es fácil de adivinar.
hint-more-words = Añada una o dos palabras más; las palabras poco comunes son mejores.
hint-case = Las mayúsculas no ayudan mucho.
hint-substitution = Las palabras al revés y las sustituciones como @ por a no ayudan mucho.
