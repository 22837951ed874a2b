"""Synthetic persons: names, resident identity numbers, phones, addresses and occupations.

Resident identity numbers follow GB 11643-1999 (公民身份号码): 6-digit address code, 8-digit
birth date, 3-digit sequence (odd for men, even for women) and a check character computed
with ISO 7064 MOD 11-2: weights 2^(17−i) mod 11 for positions i = 0..16, sum mod 11 mapped
through ``10X98765432``.

Names are drawn from common Chinese surnames (the most frequent ones of the 2020 census
ranking published by the Ministry of Public Security; the list below is our own shortlist,
weights approximate) and from a pool of common given-name characters, one or two
characters long. Nothing here is, or is meant to resemble, a real person.

Everything is vectorised: one call makes all persons of a batch with one generator, so the
same seed always yields the same people.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
from numpy.typing import NDArray

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史黎贺顾毛郝龚邵万钱覃武戴孔汤庞樊兰殷"
)
# Rough shares (per cent) of the first surnames, the rest share what is left evenly.
_SURNAME_HEAD = (7.1, 7.0, 6.7, 5.4, 4.6, 3.1, 2.4, 2.0, 2.0, 1.7, 1.5, 1.5, 1.2, 1.1, 1.0)
# Hui families are common in southern Ningxia; these surnames are frequent there.
HUI_SURNAMES = "马杨李海田王丁金白冯穆哈纳虎拜锁"

GIVEN_MALE = "伟强磊军洋勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林欢阳建国峰文博志成亮东"
GIVEN_FEMALE = "芳娜敏静丽艳娟霞秀玲燕红梅琳雪婷慧莉萍颖倩洁琴云佳悦欣怡萱晨瑶雅丹蕾璐楠薇月"
GIVEN_NEUTRAL = "子嘉一晓思雨天安俊宇梓浩欣诗小佳文乐亦可心若"

ID_WEIGHTS = np.array([pow(2, 17 - i, 11) for i in range(17)], dtype=np.int64)
CHECK_CHARS = "10X98765432"


def id_check_char(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("need exactly 17 digits")
    total = sum(int(c) * int(w) for c, w in zip(first17, ID_WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def id_is_valid(number: str) -> bool:
    """True if ``number`` is an 18-character GB 11643 number with a correct check character."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    return id_check_char(number[:17]) == number[17].upper()


def _surname_weights() -> NDArray[np.float64]:
    n = len(SURNAMES)
    head = np.array(_SURNAME_HEAD)
    rest = np.full(n - head.size, (100.0 - head.sum()) / (n - head.size))
    w = np.concatenate([head, rest])
    return w / w.sum()


_SURNAME_P = _surname_weights()


def names(rng: np.random.Generator, sex: NDArray[np.str_], hui_share: float = 0.0) -> list[str]:
    """One name per entry of ``sex`` ('1' male, '2' female); ``hui_share`` of Hui surnames."""
    n = sex.shape[0]
    size = (n,)
    surname_idx: list[int] = rng.choice(len(SURNAMES), size, p=_SURNAME_P).tolist()
    hui: list[bool] = (rng.random(size) < hui_share).tolist()
    hui_idx: list[int] = rng.integers(0, len(HUI_SURNAMES), size).tolist()
    two: list[bool] = (rng.random(size) < 0.7).tolist()
    male: list[bool] = (sex == "1").tolist()
    g1m: list[int] = rng.integers(0, len(GIVEN_MALE), size).tolist()
    g1f: list[int] = rng.integers(0, len(GIVEN_FEMALE), size).tolist()
    g0: list[int] = rng.integers(0, len(GIVEN_NEUTRAL), size).tolist()
    out = []
    for i in range(n):
        surname = HUI_SURNAMES[hui_idx[i]] if hui[i] else SURNAMES[surname_idx[i]]
        last = GIVEN_MALE[g1m[i]] if male[i] else GIVEN_FEMALE[g1f[i]]
        given = GIVEN_NEUTRAL[g0[i]] + last if two[i] else last
        out.append(surname + given)
    return out


def id_numbers(
    rng: np.random.Generator,
    county_codes: list[str],
    birth_dates: list[date],
    sex: NDArray[np.str_],
) -> list[str]:
    """Valid 18-character identity numbers for the given birth county, birth date and sex."""
    n = len(county_codes)
    seq = rng.integers(0, 500, n) * 2  # even 0..998
    seq = seq + (sex == "1").astype(np.int64)  # odd for men
    seq = np.where(seq == 0, 2, seq)
    first17 = [f"{county_codes[i][:6]}{birth_dates[i]:%Y%m%d}{seq[i]:03d}" for i in range(n)]
    if n == 0:
        return []
    digits = np.frombuffer("".join(first17).encode("ascii"), dtype=np.uint8).reshape(n, 17) - 48
    check = (digits.astype(np.int64) @ ID_WEIGHTS) % 11
    return [f + CHECK_CHARS[int(c)] for f, c in zip(first17, check, strict=True)]


def phones(rng: np.random.Generator, n: int) -> list[str]:
    """Mobile numbers with common Chinese prefixes (13x/15x/18x/19x), never real on purpose."""
    prefixes = np.array(
        [
            "139",
            "138",
            "137",
            "136",
            "135",
            "150",
            "151",
            "158",
            "180",
            "186",
            "187",
            "189",
            "191",
            "199",
        ]
    )
    p = prefixes[rng.integers(0, prefixes.size, n)]
    tail = rng.integers(0, 100_000_000, n)
    return [f"{p[i]}{tail[i]:08d}" for i in range(n)]


# 人群分类 codes of the national card (facts §2.2)
OCC_KINDERGARTEN = "1"  # 幼托儿童
OCC_SCATTERED = "2"  # 散居儿童
OCC_STUDENT = "3"  # 学生(大中小学)
OCC_TEACHER = "4"
OCC_NURSERY = "5"
OCC_CATERING = "6"
OCC_PUBLIC_SERVICE = "7"
OCC_COMMERCE = "8"
OCC_MEDICAL = "9"
OCC_WORKER = "16"
OCC_MIGRANT = "17"
OCC_FARMER = "18"
OCC_HERDER = "19"
OCC_DRIVER = "21"
OCC_CADRE = "22"
OCC_RETIRED = "23"
OCC_HOUSEWORK = "24"
OCC_UNKNOWN = "28"

ADULT_OCCUPATIONS = (
    OCC_FARMER,
    OCC_HERDER,
    OCC_WORKER,
    OCC_MIGRANT,
    OCC_HOUSEWORK,
    OCC_CADRE,
    OCC_COMMERCE,
    OCC_CATERING,
    OCC_TEACHER,
    OCC_MEDICAL,
    OCC_PUBLIC_SERVICE,
    OCC_DRIVER,
    OCC_NURSERY,
)


def occupations(
    rng: np.random.Generator,
    age_years: NDArray[np.int64],
    adult_weights: dict[str, float],
    herding: NDArray[np.bool_],
    urban: NDArray[np.bool_],
    kindergarten_share: float = 0.8,
) -> NDArray[np.str_]:
    """人群分类 consistent with age (≤14 only 幼托/散居/学生, facts §2.1) and the township.

    Under 3: 散居儿童; 3–6: 幼托儿童 with ``kindergarten_share``, else 散居; 7–22: 学生
    (after 18 only a share); adults by ``adult_weights`` (keys: card codes), with 牧民 only in
    herding townships and 农民 less likely in urban ones; 60 and over mostly 离退/农民.
    """
    n = age_years.shape[0]
    out = np.full(n, OCC_UNKNOWN, dtype="<U2")
    u = rng.random((n,))
    out[age_years < 3] = OCC_SCATTERED
    kg = (age_years >= 3) & (age_years <= 6)
    out[kg] = np.where(u[kg] < kindergarten_share, OCC_KINDERGARTEN, OCC_SCATTERED)
    out[(age_years >= 7) & (age_years <= 17)] = OCC_STUDENT
    young = (age_years >= 18) & (age_years <= 22)
    student_young = young & (u < 0.45)
    out[student_young] = OCC_STUDENT
    adult = (age_years >= 18) & ~student_young
    codes = list(adult_weights)
    base = np.array([adult_weights[c] for c in codes], dtype=np.float64)
    idx_adult = np.flatnonzero(adult)
    if idx_adult.size and base.sum() > 0:
        w = np.broadcast_to(base, (idx_adult.size, base.size)).copy()
        if OCC_HERDER in codes:
            w[~herding[idx_adult], codes.index(OCC_HERDER)] = 0.0
        if OCC_FARMER in codes:
            w[urban[idx_adult], codes.index(OCC_FARMER)] *= 0.3
        old = age_years[idx_adult] >= 60
        if OCC_RETIRED in codes:
            w[old, codes.index(OCC_RETIRED)] += w[old].sum(axis=1) * 0.6
        w /= w.sum(axis=1, keepdims=True)
        cum = w.cumsum(axis=1)
        pick = (rng.random(idx_adult.size)[:, None] > cum).sum(axis=1)
        pick = np.minimum(pick, len(codes) - 1)
        out[idx_adult] = np.array(codes)[pick]
    return out


def birth_dates(
    rng: np.random.Generator, onset: list[date], age_years: NDArray[np.int64]
) -> list[date]:
    """A birth date such that the person is ``age_years`` old (completed years) at onset."""
    back = rng.integers(0, 365, len(onset))
    out = []
    for i, d in enumerate(onset):
        year = d.year - int(age_years[i])
        anniversary = date(year, d.month, 28 if (d.month, d.day) == (2, 29) else d.day)
        out.append(anniversary - timedelta(days=int(back[i])))
    return out
