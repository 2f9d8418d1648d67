-- Stored default SMS templates keep the wallet code apart from the link to its offer.
--
-- A tenant's default SMS template is stored, with the built-in text of the day, on its first
-- use. The two earlier texts put the claim link in every SMS, the second one with the wallet
-- code beside it, so in a batch inviting by email and SMS the SMS alone could claim the
-- credential; uploads and workers now refuse such a template, and a tenant cannot edit its
-- default. Each stored default still holding one of those texts takes the current built-in
-- one (credbatch/catalog/defaults.py: the code alone when there is one, the links otherwise).
-- A default is written by the system only, so any other text is left as it is.
--
-- The table forces row-level security on its owner too; the owner steps out of it for this
-- one statement, inside the migration's transaction.
ALTER TABLE sms_templates NO FORCE ROW LEVEL SECURITY;
UPDATE sms_templates
SET body = '{% if tx_code %}{{ issuer_name }} issued you a credential. Your wallet code: '
           '{{ tx_code }} (the link to claim it came by email){% else %}{{ issuer_name }} '
           'issued you a credential. Claim it: {{ claim_url }}{% if offer_url %} Wallet: '
           '{{ offer_url }}{% endif %}{% endif %}'
WHERE is_default
  AND body IN (
    '{{ issuer_name }} issued you a credential. Claim it: {{ claim_url }}',
    '{{ issuer_name }} issued you a credential. Claim it: {{ claim_url }}{% if tx_code %} '
    'Wallet code: {{ tx_code }}{% elif offer_url %} Wallet: {{ offer_url }}{% endif %}'
  );
ALTER TABLE sms_templates FORCE ROW LEVEL SECURITY;
