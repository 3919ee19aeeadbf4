# pwmail 日本語。

## 期間と日時

duration-seconds = { $n }秒
duration-minutes = { $n }分
duration-hours = { $n }時間
duration-days = { $n }日
datetime-utc = { $datetime }（UTC）

## メール

greeting = こんにちは。
greeting-named = { $name } 様
email-open-link = 次のリンクを開いて、新しいパスワードを設定してください：
email-button = 新しいパスワードを設定する
email-paste-link = または、このリンクをブラウザーに貼り付けてください：
email-expiry = このリンクは一度だけ使え、{ $expires_in }後（{ $expires_at }）に期限が切れます。
email-questions = ご不明な点は { $support } までお問い合わせください。

email-link-subject = { $product } のパスワードを設定してください
email-link-intro = { $product } の管理者から、アカウント { $email } の新しいパスワードを設定するためのリンクを送るよう依頼がありました。
email-link-current-works = このリンクを使うまでは、現在のパスワードを引き続き使えます。
email-link-ignore = このメールに心当たりがない場合は、無視してください。

email-reset-subject = { $product } のパスワードがリセットされました
email-reset-intro = { $product } の管理者が、アカウント { $email } のパスワードをリセットしました。以前のパスワードは使えなくなり、これまでのパスワード用リンクはすべて無効になりました。
email-reset-ask-again = 期限が切れた場合は、管理者に新しいリンクを送るよう依頼してください。

email-changed-subject = { $product } のパスワードが変更されました
email-changed-body = { $product } のアカウント { $email } のパスワードが { $changed_at } に変更されました。このアカウントのほかのパスワード用リンクはすべて無効になりました。
email-changed-not-you = 心当たりがない場合は、すぐに管理者に連絡してください。
email-changed-not-you-support = 心当たりがない場合は、すぐに管理者（{ $support }）に連絡してください。

## パスワード再設定ページ

page-form-title = 新しいパスワードを選ぶ
page-form-account = アカウント：{ $email }
page-new-password = 新しいパスワード
page-confirm-password = もう一度入力
page-rule-length = { $min } 文字以上。複数の単語からなる長いパスフレーズを歓迎します。
page-rule-guessable = 数字や記号は必須ではありませんが、よく使われるパスワードや推測しやすいパスワード、名前やメールアドレスから作ったパスワードは使えません。
page-submit = パスワードを設定
page-form-expiry = このリンクは一度だけ使え、{ $expires_at } に期限が切れます。
page-busy = 現在、多くのパスワードが変更されています。リンクはまだ有効です。数秒後にもう一度送信してください。

page-done-title = パスワードを変更しました
page-done-heading = パスワードが変更されました
page-done-body = { $email } の新しいパスワードが設定され、今から使えます。
page-done-confirmation = 確認のメールもこのアドレスに送りました。このアカウントのほかのパスワード用リンクはもう使えません。
page-continue = { $host } へ進む

problem-ask = 管理者に、パスワード用メールを新しく送るよう依頼してください。
problem-invalid-title = このリンクは無効です
problem-invalid-explanation = リンクの期限が切れているか、リンクが途中で切れています。リンクは一定の時間しか使えません。
problem-used-title = このリンクは使用済みです
problem-used-explanation = このリンクですでにパスワードが設定されています。リンクは一度しか使えません。
problem-used-next = ご自身で行ったものでない場合は、すぐに管理者に連絡してください。
problem-revoked-title = このリンクは取り消されました
problem-revoked-explanation = 新しいパスワード用メールが送られたか、パスワードが変更されたため、このリンクはもう使えません。
problem-revoked-next = 受け取った最新のメールを使ってください。
problem-throttled-title = 試行回数が多すぎます
problem-throttled-explanation = お使いのネットワークから無効なリンクが多数開かれました。
problem-throttled-next = { $wait }後にもう一度お試しください。
problem-too-large-title = フォームが大きすぎます
problem-too-large-explanation = 送信された内容は、このページが受け付けるどのパスワードよりもはるかに大きいものです。
problem-reopen-form = メールのリンクをもう一度開き、フォームを使ってください。
problem-timeout-title = フォームが時間内に届きませんでした
problem-timeout-explanation = フォームの送信中に接続が遅すぎたか、切れました。リンクは使われていません。
problem-timeout-next = メールのリンクをもう一度開き、フォームを再送信してください。
problem-unsupported-title = このフォームを読み取れませんでした
problem-unsupported-explanation = 新しいパスワードは、このページのフォームから送信する必要があります。
problem-method-title = このページはその方法では使えません
problem-method-explanation = このページはフォームを表示し、そのフォームから新しいパスワードを受け取ります。
problem-method-next = メールのリンクをウェブブラウザーで開いてください。
problem-unavailable-title = しばらくしてからもう一度お試しください
problem-unavailable-explanation = 現在、サービスがデータベースに接続できません。リンクは使われていません。
problem-unavailable-next = { $wait }後にこのページを再読み込みしてください。
problem-internal-title = 問題が発生しました
problem-internal-explanation = こちら側のエラーのため、パスワードを設定できませんでした。
problem-internal-next = 後でもう一度お試しください。

## パスワードの規則

rule-mismatch = 2つのパスワードが一致しません。
rule-control = パスワードに制御文字（タブや改行など）が含まれています。文字、数字、スペース、記号を使ってください。
rule-too-short = パスワードが短すぎます。{ $min } 文字以上にしてください。
rule-too-long = パスワードが長すぎます。{ $max } バイト以下にしてください。
rule-common = このパスワードは最もよく使われるものの一つです。別のパスワードを選んでください。
rule-guessable = このパスワードは推測されやすいです。
hint-keyboard = キーの並びのようなキーボードのパターンは推測されやすいです。
hint-repeats = 文字や単語の繰り返しは推測されやすいです。
hint-common = よく使われるパスワードに似すぎています。
hint-sequence = abc や 6543 のような連続は推測されやすいです。
hint-dates = 日付や年は推測されやすいです。
hint-word = 単語や名前ひとつだけでは推測されやすいです。
hint-more-words = 単語をもう一つか二つ加えてください。珍しい単語ほど効果的です。
hint-case = 大文字を使ってもあまり効果はありません。
hint-substitution = 単語の逆さ書きや、a の代わりに @ を使うような置き換えはあまり効果がありません。
