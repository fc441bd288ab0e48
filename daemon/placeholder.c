int daemon_placeholder(void);
int daemon_placeholder(void) { return 0; }
