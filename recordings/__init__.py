"""Call recordings and chat logs, encrypted and compressed on S3 or disk.

Not built yet: no issue has asked for it so far (see the README's "What is built").
"""
