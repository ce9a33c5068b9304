x = 1 / 0


class Algorithm:
    def run(self, current_time, algo_id):
        return ("hold", 0)
