"""One orchestration of a try-on, shared by the command line, the service and the evaluation."""
