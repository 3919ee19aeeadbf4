# pwmail بالعربية.

## المدد والتواريخ

duration-seconds = { $n ->
    [zero] { $n } ثانية
    [one] ثانية واحدة
    [two] ثانيتين
    [few] { $n } ثوانٍ
    [many] { $n } ثانية
   *[other] { $n } ثانية
}
duration-minutes = { $n ->
    [zero] { $n } دقيقة
    [one] دقيقة واحدة
    [two] دقيقتين
    [few] { $n } دقائق
    [many] { $n } دقيقة
   *[other] { $n } دقيقة
}
duration-hours = { $n ->
    [zero] { $n } ساعة
    [one] ساعة واحدة
    [two] ساعتين
    [few] { $n } ساعات
    [many] { $n } ساعة
   *[other] { $n } ساعة
}
duration-days = { $n ->
    [zero] { $n } يوم
    [one] يوم واحد
    [two] يومين
    [few] { $n } أيام
    [many] { $n } يومًا
   *[other] { $n } يوم
}
datetime-utc = { $datetime } بالتوقيت العالمي (UTC)

## رسائل البريد الإلكتروني

greeting = مرحبًا،
greeting-named = مرحبًا { $name }،
email-open-link = افتح هذا الرابط لاختيار كلمة مرورك الجديدة:
email-button = تعيين كلمة مرور جديدة
email-paste-link = أو الصق هذا الرابط في متصفحك:
email-expiry = يعمل الرابط مرة واحدة وتنتهي صلاحيته بعد { $expires_in } (في { $expires_at }).
email-questions = هل لديك أسئلة؟ تواصل مع { $support }.

email-link-subject = عيّن كلمة مرورك في { $product }
email-link-intro = طلب منا أحد مسؤولي { $product } أن نرسل إليك رابطًا لتعيين كلمة مرور جديدة للحساب { $email }.
email-link-current-works = تظل كلمة مرورك الحالية صالحة إلى أن تستخدم الرابط.
email-link-ignore = إذا لم تكن تتوقع هذه الرسالة، يمكنك تجاهلها.

email-reset-subject = أُعيد تعيين كلمة مرورك في { $product }
email-reset-intro = أعاد أحد مسؤولي { $product } تعيين كلمة مرور الحساب { $email }. لم تعد كلمة مرورك السابقة تعمل، وأُلغيت جميع روابط كلمة المرور السابقة.
email-reset-ask-again = إذا انتهت صلاحيته، فاطلب من المسؤول أن يرسل إليك رابطًا جديدًا.

email-changed-subject = تغيّرت كلمة مرورك في { $product }
email-changed-body = تغيّرت كلمة مرور حساب { $product } ‏{ $email } في { $changed_at }. وأُلغيت جميع روابط كلمة المرور الأخرى لهذا الحساب.
email-changed-not-you = إذا لم تكن أنت من فعل ذلك، فتواصل مع المسؤول فورًا.
email-changed-not-you-support = إذا لم تكن أنت من فعل ذلك، فتواصل مع المسؤول فورًا ({ $support }).

## صفحة إعادة التعيين

page-form-title = اختر كلمة مرور جديدة
page-form-account = للحساب { $email }.
page-new-password = كلمة المرور الجديدة
page-confirm-password = اكتبها مرة أخرى
page-rule-length = { $min } حرفًا على الأقل؛ نرحّب بعبارات المرور الطويلة المكوّنة من عدة كلمات.
page-rule-guessable = لا حاجة إلى أرقام أو رموز، لكن كلمات المرور الشائعة أو السهلة التخمين، أو المبنية من اسمك أو بريدك الإلكتروني، مرفوضة.
page-submit = تعيين كلمة المرور
page-form-expiry = يعمل هذا الرابط مرة واحدة وتنتهي صلاحيته في { $expires_at }.
page-busy = يجري تغيير عدد كبير جدًا من كلمات المرور الآن. لا يزال رابطك صالحًا: أعد الإرسال بعد بضع ثوانٍ.

page-done-title = تغيّرت كلمة المرور
page-done-heading = تغيّرت كلمة مرورك
page-done-body = عُيّنت كلمة المرور الجديدة لـ { $email } وهي تعمل من الآن.
page-done-confirmation = أرسلنا أيضًا تأكيدًا إلى هذا العنوان. لم يعد أي رابط آخر لكلمة مرور هذا الحساب يعمل.
page-continue = المتابعة إلى { $host }

problem-ask = اطلب من المسؤول أن يرسل إليك رسالة جديدة لكلمة المرور.
problem-invalid-title = هذا الرابط غير صالح
problem-invalid-explanation = انتهت صلاحية الرابط، أو أنه غير مكتمل. تعمل الروابط لمدة محدودة.
problem-used-title = استُخدم هذا الرابط من قبل
problem-used-explanation = عُيّنت كلمة المرور بهذا الرابط من قبل؛ يعمل كل رابط مرة واحدة.
problem-used-next = إذا لم تكن أنت، فتواصل مع المسؤول فورًا.
problem-revoked-title = أُلغي هذا الرابط
problem-revoked-explanation = أُرسلت رسالة أحدث لكلمة المرور، أو تغيّرت كلمة المرور، لذا لم يعد هذا الرابط يعمل.
problem-revoked-next = استخدم أحدث رسالة وصلتك.
problem-throttled-title = محاولات كثيرة جدًا
problem-throttled-explanation = فُتح عدد كبير جدًا من الروابط غير الصالحة من شبكتك.
problem-throttled-next = حاول مرة أخرى بعد { $wait }.
problem-too-large-title = هذا النموذج كبير جدًا
problem-too-large-explanation = ما أُرسل أكبر بكثير من أي كلمة مرور تقبلها الصفحة.
problem-reopen-form = افتح الرابط من بريدك مرة أخرى واستخدم النموذج.
problem-timeout-title = لم يصل النموذج في الوقت المحدد
problem-timeout-explanation = كان الاتصال بطيئًا جدًا أو انقطع أثناء إرسال النموذج. لم يُستخدم رابطك.
problem-timeout-next = افتح الرابط من بريدك مرة أخرى وأرسل النموذج من جديد.
problem-unsupported-title = تعذّرت قراءة هذا النموذج
problem-unsupported-explanation = يجب إرسال كلمة المرور الجديدة عبر النموذج الموجود في هذه الصفحة.
problem-method-title = لا يمكن استخدام هذه الصفحة بهذه الطريقة
problem-method-explanation = تعرض الصفحة نموذجًا، وتأخذ كلمة المرور الجديدة من هذا النموذج.
problem-method-next = افتح الرابط من بريدك في متصفح ويب.
problem-unavailable-title = يُرجى المحاولة بعد قليل
problem-unavailable-explanation = لا تستطيع الخدمة الوصول إلى قاعدة بياناتها في الوقت الحالي. لم يُستخدم رابطك.
problem-unavailable-next = أعد تحميل هذه الصفحة بعد { $wait }.
problem-internal-title = حدث خطأ ما
problem-internal-explanation = تعذّر تعيين كلمة المرور بسبب خطأ من جهتنا.
problem-internal-next = حاول مرة أخرى لاحقًا.

## قواعد كلمة المرور

rule-mismatch = كلمتا المرور غير متطابقتين.
rule-control = تحتوي كلمة المرور على حرف تحكم (مثل مسافة جدولة أو سطر جديد)؛ استخدم الحروف والأرقام والمسافات والرموز.
rule-too-short = كلمة المرور قصيرة جدًا: استخدم { $min } حرفًا على الأقل.
rule-too-long = كلمة المرور طويلة جدًا: { $max } بايت على الأكثر.
rule-common = كلمة المرور هذه من أكثر كلمات المرور شيوعًا. اختر غيرها.
rule-guessable = سيكون تخمين كلمة المرور هذه سهلًا.
hint-keyboard = أنماط لوحة المفاتيح، مثل صفوف المفاتيح، سهلة التخمين.
hint-repeats = الحروف أو الكلمات المكررة سهلة التخمين.
hint-common = إنها قريبة جدًا من كلمة مرور شائعة الاستخدام.
hint-sequence = التسلسلات مثل abc أو 6543 سهلة التخمين.
hint-dates = التواريخ والسنوات سهلة التخمين.
hint-word = الكلمة الواحدة أو الاسم وحده سهل التخمين.
hint-more-words = أضف كلمة أو كلمتين؛ الكلمات غير الشائعة أفضل.
hint-case = الأحرف الكبيرة لا تفيد كثيرًا.
hint-substitution = الكلمات المعكوسة والاستبدالات مثل @ بدل a لا تفيد كثيرًا.
