/* Keeps the support library non-empty before its first helper lands. */
int sw__test_support_placeholder;
