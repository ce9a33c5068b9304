import module_that_does_not_exist  # noqa: F401


class Algorithm:
    def run(self, current_time, algo_id):
        return ("hold", 0)
