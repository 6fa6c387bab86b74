"""The program behind listdemo.prof: small functions that burn CPU on known
lines, called from two places, recursing, and through a method."""


def square_sum(n):
    total = 0
    for i in range(n):
        total += i * i
    return total


def cube_sum(n):
    total = 0
    for i in range(n):
        total += i * i * i
    return total


def mix(n):
    a = square_sum(n)
    b = cube_sum(n // 2)
    return a + b


def descend(depth, n):
    if depth == 0:
        return mix(n)
    return descend(depth - 1, n)


class Worker:
    def run(self, rounds):
        out = 0
        for _ in range(rounds):
            out += mix(20_000)
            out += descend(3, 10_000)
        return out


def main():
    return Worker().run(400)


main()
