// The client's API speaks in POP3Core's types (POP3Response); importing POP3Client alone is enough.
@_exported import MailCore
@_exported import POP3Core
